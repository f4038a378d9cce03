"""SQLite specifics: every sort walks its covering index, and stats come from maintained counts."""

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.blobs import BlobStore
from catalog.metadata import read_metadata
from catalog.models import SORT_KEYS, CountQuery, ImageMeta, ImageQuery, ImageRecord, SortKey
from catalog.store.bulk import add_records, drop, explain
from catalog.store.sqlite import SqliteImageStore, count_sql

FILTERS: list[dict[str, object]] = [
    {},
    {"min_width": 1920, "max_width": 4000},
    {"min_height": 1080, "max_height": 2160},
    {"min_pixels": 2_000_000, "max_pixels": 9_000_000},
    {"min_width": 1920, "min_height": 1080, "format": ["jpeg"], "orientation": "landscape"},
    {"name": "img"},
]


@pytest.fixture
def store(tmp_path: Path) -> SqliteImageStore:
    return SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))


def record(n: int, width: int, height: int, format: str = "jpeg") -> ImageRecord:
    meta = ImageMeta(f"{n:02x}" * 32, format, "RGB", width, height, 1, 1000)  # type: ignore[arg-type]
    return ImageRecord.from_meta(
        meta, name=f"img-{n}.jpg", created=datetime(2024, 1, n, tzinfo=UTC)
    )


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
@pytest.mark.parametrize("paged", [False, True])
def test_every_sort_walks_its_index_without_a_temp_sort(
    store: SqliteImageStore, sort: SortKey, filters: dict[str, object], paged: bool
) -> None:
    add_records(store, [record(1, 4000, 3000), record(2, 1920, 1080)])
    cursor = store.query(ImageQuery(sort=sort, limit=1)).next_cursor if paged else None
    assert (cursor is not None) == paged
    query = ImageQuery.model_validate({"sort": sort, "limit": 50, "cursor": cursor, **filters})
    plan = explain(store, query)
    field = sort.lstrip("-")
    # Only the name filter needs a column the other sort indexes do not carry.
    covering = "COVERING " if "name" not in filters or field == "name" else ""
    uses_index = re.compile(rf"USING {covering}INDEX images_by_{field}\b")
    assert any(uses_index.search(step) for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"format": ["png"]}, "images_by_format"),
        ({"orientation": "portrait"}, "images_by_format"),
        ({"format": ["jpeg", "png"], "min_width": 1920, "max_width": 4000}, "images_by_format"),
        ({"min_width": 1920, "max_width": 4000}, "images_by_width"),
        ({"min_width": 10, "min_height": 1080, "max_height": 2160}, "images_by_height"),
        ({"min_pixels": 2_000_000}, "images_by_pixels"),
    ],
)
def test_counts_seek_in_a_covering_index(
    store: SqliteImageStore, filters: dict[str, object], index: str
) -> None:
    add_records(store, [record(1, 4000, 3000), record(2, 1920, 1080, "png")])
    sql, params = count_sql(CountQuery.model_validate(filters))
    plan = [
        row["detail"] for row in store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params)
    ]
    assert any(f"SEARCH images USING COVERING INDEX {index} (" in step for step in plan), plan
    assert all("TEMP B-TREE" not in step for step in plan), plan


def test_stats_counts_follow_inserts_and_deletes(store: SqliteImageStore) -> None:
    add_records(store, [record(1, 40, 30), record(2, 30, 40, "png"), record(3, 30, 30, "png")])
    store.delete(record(2, 30, 40).id)
    stats = store.stats()
    assert stats.count == 2
    assert stats.formats == {
        "jpeg": 1, "png": 1, "webp": 0, "gif": 0, "tiff": 0, "bmp": 0, "avif": 0, "heic": 0
    }  # fmt: skip
    assert stats.orientations == {"landscape": 1, "portrait": 0, "square": 1}
    assert (stats.min_width, stats.max_width) == (30, 40)
    assert (stats.min_height, stats.max_height) == (30, 30)


def test_catalog_made_before_the_counts_is_counted_on_open(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    add_records(
        SqliteImageStore(path, BlobStore(tmp_path / "blobs")),
        [record(1, 40, 30), record(2, 30, 40, "png")],
    )
    with sqlite3.connect(path) as connection:  # as the walking skeleton left it
        connection.executescript(
            "DROP TRIGGER images_count_insert; DROP TRIGGER images_count_delete;"
            "DROP TABLE image_counts;"
        )
    stats = SqliteImageStore(path, BlobStore(tmp_path / "blobs")).stats()
    assert (stats.count, stats.formats["jpeg"], stats.formats["png"]) == (2, 1, 1)
    assert stats.orientations == {"landscape": 1, "portrait": 1, "square": 0}


def test_drop_deletes_the_database_and_the_originals(tmp_path: Path) -> None:
    store = SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    data = (Path(__file__).resolve().parents[2] / "samples" / "camera.png").read_bytes()
    store.add(read_metadata(data, max_pixels=50_000_000), "camera.png", data)
    drop(store)
    assert list(tmp_path.iterdir()) == []
