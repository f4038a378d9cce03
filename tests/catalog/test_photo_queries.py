"""Filters on photo metadata (date taken, camera, colour, location), sort=taken with undated
images, GET /v1/cameras, SQLite's plans for them, and the migration of older catalogs.

Each store test runs on SQLite and on the Mongo store over mongomock.
"""

import base64
import hashlib
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.blobs import BlobStore
from catalog.config import Settings
from catalog.main import create_app
from catalog.models import (
    CountQuery,
    ImageMeta,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    Location,
    PhotoMeta,
    SortKey,
)
from catalog.store import ImageStore
from catalog.store.bulk import add_records, explain
from catalog.store.sqlite import SqliteImageStore, count_sql
from tests.catalog.test_cursors import fresh_store

STORES = ["sqlite", "mongomock"]
CAMERAS = [("Canon", "Canon EOS R5"), ("Apple", "iPhone 12 Pro"), (None, None)]
COLOURS = ["red", "blue", "grey"]
TAKEN = [None, "2023-06-01T10:00:00", "2023-06-01T10:00:00+02:00", "2024-01-31T23:59:59",
         "2024-02-01T00:00:00-05:00", "2021-12-25T08:30:00"]  # fmt: skip
CHEAP = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def photo_record(
    n: int,
    *,
    taken_at: str | None = None,
    camera: tuple[str | None, str | None] = (None, None),
    colour: str = "grey",
    location: bool = False,
) -> ImageRecord:
    """Record number n with this photo metadata."""
    photo = PhotoMeta(
        taken_at=taken_at,
        camera_make=camera[0],
        camera_model=camera[1],
        has_location=location,
        location=Location(lat=1.5, lon=-2.25) if location else None,
        dominant_colour="#808080",
        colour=colour,  # type: ignore[arg-type]
        phash=f"{n:016x}",
    )
    meta = ImageMeta(
        sha256=hashlib.sha256(b"photo %d" % n).hexdigest(),
        format="jpeg",
        mode="RGB",
        width=100 + n,
        height=100,
        exif_orientation=1,
        bytes=1000,
        photo=photo,
    )
    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    return ImageRecord.from_meta(meta, name=f"p{n}.jpg", created=created)


RECORDS = [
    photo_record(n, taken_at=TAKEN[n % 6], camera=CAMERAS[n % 3], colour=COLOURS[n % 3 - 1],
                 location=n % 4 == 0)
    for n in range(24)
]  # fmt: skip


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    with fresh_store(request.param, tmp_path) as empty:
        add_records(empty, RECORDS)
        yield empty


def everything(store: ImageStore, **params: object) -> list[ImagePublic]:
    """Every page of the query, by following next_cursor (bounded)."""
    query = ImageQuery.model_validate({"limit": 5, **params})
    found: list[ImagePublic] = []
    for _ in range(100):
        page = store.query(query)
        found += page.items
        if page.next_cursor is None:
            return found
        query = query.model_copy(update={"cursor": page.next_cursor})
    raise AssertionError("more pages than records")


def expected_taken_order(records: list[ImageRecord], descending: bool) -> list[str]:
    """Dated records by (taken, id) in the direction, then undated by id in the direction."""
    dated = sorted((r for r in records if r.taken), key=lambda r: (r.taken, r.id))
    undated = sorted(r.id for r in records if r.taken is None)
    if descending:
        dated.reverse()
        undated.reverse()
    return [r.id for r in dated] + undated


@pytest.mark.parametrize("sort", ["taken", "-taken"])
def test_sort_taken_lists_undated_images_last_in_both_directions(
    store: ImageStore, sort: SortKey
) -> None:
    ids = [r.id for r in everything(store, sort=sort)]
    assert ids == expected_taken_order(RECORDS, sort.startswith("-"))
    assert len(ids) == len(RECORDS)


def ids_where(predicate: object) -> set[str]:
    assert callable(predicate)
    return {r.id for r in RECORDS if predicate(r)}


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"taken_after": "2024-01-01"}, lambda r: r.taken and r.taken >= "2024-01-01"),
        # A date as taken_before means the whole day.
        ({"taken_before": "2024-01-31"}, lambda r: r.taken and r.taken <= "2024-01-31T23:59:59"),
        (
            {"taken_after": "2023-06-01T10:00:00", "taken_before": "2023-06-01T10:00:00"},
            lambda r: r.taken == "2023-06-01T10:00:00",
        ),
        ({"camera": "Canon EOS R5"}, lambda r: r.camera == "Canon EOS R5"),
        ({"camera": "Apple iPhone 12 Pro"}, lambda r: r.camera == "Apple iPhone 12 Pro"),
        ({"colour": "blue"}, lambda r: r.colour == "blue"),
        ({"has_location": True}, lambda r: r.has_location),
        ({"has_location": False}, lambda r: r.has_location is False),
        (
            {"colour": "red", "has_location": True, "min_width": 104},
            lambda r: r.colour == "red" and r.has_location and r.width >= 104,
        ),
    ],
)
@pytest.mark.parametrize("sort", ["-created", "created", "taken", "-taken", "width"])
def test_filters_match_exactly_and_combine(
    store: ImageStore, params: dict[str, object], predicate: object, sort: SortKey
) -> None:
    wanted = ids_where(predicate)
    assert wanted, "every filter here matches something"
    found = everything(store, sort=sort, **params)
    assert [r.id for r in found] == list(dict.fromkeys(r.id for r in found))
    assert {r.id for r in found} == wanted
    assert store.count(CountQuery.model_validate(params)).count == len(wanted)


def test_records_round_trip_their_photo_fields(store: ImageStore) -> None:
    for record in RECORDS[:6]:
        assert store.get(record.id) == record
    located = store.get(RECORDS[0].id)
    assert located.location == Location(lat=1.5, lon=-2.25)
    assert located.taken_at == "2023-06-01T10:00:00" or located.taken_at is None


def test_cameras_are_counted_most_used_first(store: ImageStore) -> None:
    cameras = [(c.camera, c.count) for c in store.cameras()]
    assert cameras == [("Apple iPhone 12 Pro", 8), ("Canon EOS R5", 8)]
    assert [c.camera for c in store.cameras(1)] == ["Apple iPhone 12 Pro"]


@st.composite
def catalogs(draw: st.DrawFn) -> list[ImageRecord]:
    """Up to 14 records whose dates tie often and are often missing."""
    count = draw(st.integers(0, 14))
    return [
        photo_record(
            n,
            taken_at=draw(st.sampled_from(TAKEN)),
            colour=draw(st.sampled_from(COLOURS)),
            location=draw(st.booleans()),
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("kind", STORES)
@CHEAP
@given(
    records=catalogs(),
    sort=st.sampled_from(["taken", "-taken"]),
    limit=st.integers(1, 4),
    colour=st.sampled_from([None, *COLOURS]),
)
def test_keyset_paging_by_taken_visits_every_image_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    records: list[ImageRecord],
    sort: SortKey,
    limit: int,
    colour: str | None,
) -> None:
    with fresh_store(kind, tmp_path_factory.mktemp("paging")) as store:
        add_records(store, records)
        filters = {} if colour is None else {"colour": colour}
        found = everything(store, sort=sort, limit=limit, **filters)
        chosen = [r for r in records if colour is None or r.colour == colour]
        assert [r.id for r in found] == expected_taken_order(chosen, sort.startswith("-"))


def test_query_parameters_are_validated(tmp_path: Path) -> None:
    with fresh_store("sqlite", tmp_path) as store:
        add_records(store, RECORDS)
        with TestClient(create_app(settings=Settings(), store=store)) as client:
            for params, field in [
                ({"taken_after": "2024-02-30"}, "taken_after"),
                ({"taken_before": "yesterday"}, "taken_before"),
                ({"taken_after": "2024-01-01 10:00:00"}, "taken_after"),
                ({"colour": "beige"}, "colour"),
                ({"has_location": "maybe"}, "has_location"),
                ({"sort": "taken_at"}, "sort"),
            ]:
                response = client.get("/v1/images", params=params)
                assert response.status_code == 422, (params, response.text)
                assert response.json()["error"]["message"].startswith(field), response.text
            backwards = {"taken_after": "2024-02-01", "taken_before": "2024-01-01"}
            assert client.get("/v1/images/count", params=backwards).status_code == 422


@pytest.mark.parametrize("kind", STORES)
def test_api_lists_counts_and_names_cameras(tmp_path: Path, kind: str) -> None:
    with fresh_store(kind, tmp_path) as store:
        add_records(store, RECORDS)
        with TestClient(create_app(settings=Settings(), store=store)) as client:
            cameras = client.get("/v1/cameras")
            assert cameras.status_code == 200
            assert cameras.json() == {
                "items": [
                    {"camera": "Apple iPhone 12 Pro", "count": 8},
                    {"camera": "Canon EOS R5", "count": 8},
                ]
            }
            page = client.get(
                "/v1/images", params={"camera": "Canon EOS R5", "sort": "-taken", "limit": 3}
            ).json()
            first = page["items"][0]
            assert first["camera"] == "Canon EOS R5" and first["camera_make"] == "Canon"
            assert re.fullmatch(r"[0-9a-f]{16}", first["phash"])
            count = client.get(
                "/v1/images/count", params={"has_location": "true", "colour": "red"}
            ).json()
            wanted = ids_where(lambda r: r.has_location and r.colour == "red")
            assert count == {"count": len(wanted), "exact": True}


# --- SQLite plans: every new filter and sort is served by an index, never a temp sort.


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteImageStore]:
    store = SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    add_records(store, RECORDS)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"sort": "taken"}, "images_by_taken"),
        ({"sort": "-taken"}, "images_by_taken"),
        ({"sort": "-taken", "taken_after": "2024-01-01"}, "images_by_taken"),
        ({"sort": "taken", "camera": "Canon EOS R5", "colour": "grey"}, "images_by_taken"),
        ({"camera": "Canon EOS R5"}, "images_by_camera"),
        ({"camera": "Canon EOS R5", "sort": "created", "min_width": 10}, "images_by_camera"),
        ({"colour": "blue"}, "images_by_colour"),
        ({"has_location": True}, "images_by_has_location"),
        ({"has_location": False, "colour": "red"}, "images_by_colour"),
    ],
)
@pytest.mark.parametrize("paged", [False, True])
def test_pages_of_photo_filters_walk_an_index(
    sqlite_store: SqliteImageStore, params: dict[str, object], index: str, paged: bool
) -> None:
    cursor = None
    if paged:
        cursor = sqlite_store.query(ImageQuery.model_validate({**params, "limit": 1})).next_cursor
        assert cursor is not None
    plan = explain(sqlite_store, ImageQuery.model_validate({**params, "cursor": cursor}))
    assert any(re.search(rf"SEARCH images USING (COVERING )?INDEX {index}\b", s) for s in plan), (
        plan
    )
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_the_undated_tail_of_sort_taken_walks_the_taken_index(
    sqlite_store: SqliteImageStore,
) -> None:
    undated = [r for r in RECORDS if r.taken is None]
    page = sqlite_store.query(ImageQuery(sort="-taken", limit=len(RECORDS) - len(undated) + 1))
    assert page.items[-1].taken is None and page.next_cursor is not None
    plan = explain(sqlite_store, ImageQuery(sort="-taken", cursor=page.next_cursor))
    assert any("USING COVERING INDEX images_by_taken (taken=?" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"camera": "Canon EOS R5"}, "images_by_camera"),
        ({"colour": "red", "format": ["jpeg"]}, "images_by_colour"),
        ({"has_location": True}, "images_by_has_location"),
        ({"taken_after": "2024-01-01"}, "images_by_taken"),
        ({"taken_after": "2023-01-01", "taken_before": "2023-12-31"}, "images_by_taken"),
    ],
)
def test_counts_of_photo_filters_seek_an_index(
    sqlite_store: SqliteImageStore, params: dict[str, object], index: str
) -> None:
    sql, values = count_sql(CountQuery.model_validate(params))
    plan = [
        row["detail"]
        for row in sqlite_store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", values)
    ]
    assert any(f"SEARCH images USING COVERING INDEX {index} (" in s for s in plan) or any(
        f"SEARCH images USING INDEX {index} (" in s for s in plan
    ), plan


OLD_SCHEMA = """
CREATE TABLE images (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL, mode TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    pixels INTEGER NOT NULL, aspect REAL NOT NULL, orientation TEXT NOT NULL,
    bytes INTEGER NOT NULL, exif_orientation INTEGER NOT NULL, created INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO images VALUES ('00112233445566778899', 'old.png', '{sha}', 'png', 'RGB',
    10, 20, 200, 0.5, 'portrait', 99, 1, 1700000000000000);
"""


def test_a_catalog_made_before_photo_metadata_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SCHEMA.format(sha="00112233445566778899" + "0" * 44))
    connection.close()
    store = SqliteImageStore(path, BlobStore(tmp_path / "blobs"))
    try:
        old = store.get("00112233445566778899")
        assert (old.taken_at, old.camera, old.colour, old.has_location, old.phash) == (
            None,
            None,
            None,
            None,
            None,
        )
        add_records(store, RECORDS[:3])
        assert [r.id for r in everything(store, sort="taken")][-1] in {
            "00112233445566778899",
            *(r.id for r in RECORDS[:3] if r.taken is None),
        }
        assert store.count(CountQuery(has_location=True)).count == 1
    finally:
        store.close()
    # Opening again finds every column in place.
    SqliteImageStore(path, BlobStore(tmp_path / "blobs")).close()


def test_a_taken_range_with_another_sort_reads_the_narrower_index(
    sqlite_store: SqliteImageStore,
) -> None:
    day = ImageQuery(taken_after="2024-01-31", taken_before="2024-01-31", sort="-created")
    plan = explain(sqlite_store, day)
    # Few images that day: read them from the taken index, then sort the handful.
    assert any("USING INDEX images_by_taken (taken>? AND taken<?)" in s for s in plan), plan
    add_records(
        sqlite_store,
        [photo_record(n, taken_at="2024-01-31T12:00:00") for n in range(100, 2200)],
    )
    plan = explain(sqlite_store, day)
    # Most images that day: walk created order, checking the range inside the index.
    assert any("SCAN images USING COVERING INDEX images_by_created_taken" in s for s in plan)
    assert not any("TEMP B-TREE" in step for step in plan), plan
    ids = [
        r.id for r in everything(sqlite_store, **day.model_dump(exclude_defaults=True), limit=200)
    ]
    assert len(ids) == 2100 + len(ids_where(lambda r: r.taken and r.taken[:10] == "2024-01-31"))


@pytest.mark.parametrize(
    "value",
    ['"2024-02-30T00:00:00"', '"2024-01-01 10:00:00"', '"2024-01-01T10:00:00+02:00"', "5", "true"],
)
def test_taken_cursors_hold_only_wall_clock_times_or_null(value: str) -> None:
    raw = f'["-taken",{value},"0123456789abcdef0123"]'.encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(ValueError, match="cursor"):
        ImageQuery(sort="-taken", cursor=cursor)
    for fine in ('"2024-02-29T23:59:59"', "null"):
        raw = f'["-taken",{fine},"0123456789abcdef0123"]'.encode()
        good = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert ImageQuery(sort="-taken", cursor=good).cursor == good
