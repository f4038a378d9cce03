"""open_store picks a backend from the URL scheme and refuses the rest clearly."""

from pathlib import Path

import pytest

from catalog.store import open_store


def test_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/nested/catalog.db", Path("data/blobs"))
    store.close()
    assert (tmp_path / "data" / "nested" / "catalog.db").is_file()


def test_unknown_scheme_names_it_without_echoing_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown store URL scheme 'postgres'") as caught:
        open_store("postgres://user:secret@host/db", tmp_path)
    assert "secret" not in str(caught.value)


def test_mongodb_is_not_available_yet(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not available yet"):
        open_store("mongodb://localhost:27017/darkroom", tmp_path)


def test_sqlite_url_without_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store("sqlite://", tmp_path)
