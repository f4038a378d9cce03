"""open_store picks a backend from the URL scheme and refuses the rest clearly."""

import re
from pathlib import Path

import pytest

from catalog.store import open_store
from catalog.store.mongo import MongoImageStore


def test_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/nested/catalog.db", Path("data/blobs"))
    store.close()
    assert (tmp_path / "data" / "nested" / "catalog.db").is_file()


def test_unknown_scheme_names_it_without_echoing_credentials(tmp_path: Path) -> None:
    expected = "unknown store URL scheme 'postgres'; expected sqlite:///path.db or mongodb://"
    with pytest.raises(ValueError, match=re.escape(expected)) as caught:
        open_store("postgres://user:secret@host/db", tmp_path)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("path", "database"), [("/photos", "photos"), ("/", "darkroom"), ("", "darkroom")]
)
def test_mongodb_url_names_the_database(tmp_path: Path, path: str, database: str) -> None:
    # Nothing listens on port 9: the store opens anyway and connects when a request comes.
    store = open_store(f"mongodb://127.0.0.1:9{path}?serverSelectionTimeoutMS=50", tmp_path)
    try:
        assert isinstance(store, MongoImageStore)
        assert store.database_name == database
    finally:
        store.close()


def test_sqlite_url_without_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store("sqlite://", tmp_path)
