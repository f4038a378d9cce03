"""The ImageStore contract: every backend must pass this suite unchanged.

Backends are the `backend` fixture's params: SQLite, the Mongo store over mongomock, and
the Mongo store over a real server when MONGO_URL is set (a fresh database per test,
dropped afterwards). Each backend brings its own way to count stored originals, and to
leave one behind with no record, as a crash between an original and its record does.
"""

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import ObjectId
from PIL import Image
from pydantic import ValidationError

from catalog.blobs import BlobStore
from catalog.errors import ImageNotFound
from catalog.metadata import read_metadata
from catalog.models import (
    CountQuery,
    ImageCount,
    ImageMeta,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    SortKey,
    decode_cursor,
)
from catalog.store import ImageStore, open_store
from catalog.store.bulk import add_records, drop
from tests.contract.mongomock_store import mongomock_store
from tests.contract.stores import MONGO_URL, server_store
from tests.imaging import oriented

LIMIT = 50_000_000


@dataclass
class Backend:
    store: ImageStore
    count_blobs: Callable[[], int]
    # Store these bytes as an original no record references, last written `age` ago.
    plant_orphan: Callable[[bytes, timedelta], None]


def file_orphan_planter(blobs: BlobStore) -> Callable[[bytes, timedelta], None]:
    """Write a blob file without a record and date it back."""

    def plant(data: bytes, age: timedelta) -> None:
        digest = hashlib.sha256(data).hexdigest()
        blobs.put(digest, data)
        written = time.time() - age.total_seconds()
        os.utime(blobs.path(digest), (written, written))

    return plant


def gridfs_orphan_planter(database: Any) -> Callable[[bytes, timedelta], None]:
    """Store a GridFS file without a record, made and finished `age` ago."""
    files = gridfs.GridFS(database)

    def plant(data: bytes, age: timedelta) -> None:
        made = datetime.now(UTC) - age
        # An ObjectId of that second, unique by its random tail.
        blob_id = ObjectId(int(made.timestamp()).to_bytes(4, "big") + os.urandom(8))
        files.put(data, _id=blob_id, metadata={"sha256": hashlib.sha256(data).hexdigest()})
        database["fs.files"].update_one({"_id": blob_id}, {"$set": {"uploadDate": made}})

    return plant


BACKENDS = ["sqlite", "mongomock", "mongodb"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        blobs = tmp_path / "blobs"
        store = open_store(f"sqlite:///{tmp_path / 'catalog.db'}", blobs)
        yield Backend(store, BlobStore(blobs).count, file_orphan_planter(BlobStore(blobs)))
        store.close()
        return
    if request.param == "mongomock":
        mongo, client = mongomock_store()
    else:
        if not MONGO_URL:
            pytest.skip("MONGO_URL is not set: no MongoDB server to run the store suite against")
        mongo, client = server_store()
    database = client[mongo.database_name]
    files = database["fs.files"]
    try:
        yield Backend(mongo, lambda: files.count_documents({}), gridfs_orphan_planter(database))
    finally:
        drop(mongo)
        mongo.close()


@pytest.fixture
def store(backend: Backend) -> ImageStore:
    return backend.store


def image_bytes(width: int, height: int, *, format: str = "PNG", seed: int = 0) -> bytes:
    """A small image whose content (hence sha256) differs by seed."""
    image = Image.new("RGB", (width, height), (seed % 256, seed // 256 % 256, 7))
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def add(store: ImageStore, name: str, data: bytes) -> ImagePublic:
    record, created = store.add(read_metadata(data, max_pixels=LIMIT), name, data)
    assert created
    return record


# name: (width, height, format); ties on width, height and pixels on purpose.
FIXTURE_IMAGES = {
    "Alpha.png": (10, 20, "PNG"),
    "beta.png": (10, 30, "PNG"),
    "gamma.jpg": (20, 10, "JPEG"),
    "delta.gif": (30, 30, "GIF"),
    "epsilon.png": (20, 20, "PNG"),
    "zeta 100%_off.webp": (40, 10, "WEBP"),
    "eta.bmp": (20, 10, "BMP"),
}


@pytest.fixture
def populated(store: ImageStore) -> dict[str, ImagePublic]:
    return {
        name: add(store, name, image_bytes(w, h, format=fmt, seed=i))
        for i, (name, (w, h, fmt)) in enumerate(FIXTURE_IMAGES.items())
    }


def names(page_items: list[ImagePublic]) -> set[str]:
    return {item.name for item in page_items}


def everything(store: ImageStore, **filters: object) -> list[ImagePublic]:
    return store.query(ImageQuery.model_validate({"limit": 200, **filters})).items


def test_add_new_then_duplicate(store: ImageStore) -> None:
    data = image_bytes(64, 48)
    meta = read_metadata(data, max_pixels=LIMIT)
    first, created = store.add(meta, "first.png", data)
    assert created
    assert (first.id, first.sha256, first.name) == (meta.sha256[:20], meta.sha256, "first.png")
    assert (first.width, first.height, first.pixels, first.aspect) == (64, 48, 3072, 1.3333)
    assert (first.format, first.mode, first.orientation) == ("png", "RGB", "landscape")
    assert (first.bytes, first.exif_orientation) == (len(data), 1)
    again, created_again = store.add(meta, "second-name.png", data)
    assert not created_again
    assert again == first
    assert len(everything(store)) == 1


def test_get_returns_the_stored_record(store: ImageStore) -> None:
    record = add(store, "a.png", image_bytes(5, 6))
    assert store.get(record.id) == record
    with pytest.raises(ImageNotFound):
        store.get("0" * 20)
    with pytest.raises(ImageNotFound):
        store.get("../../etc/passwd")


def test_content_round_trip(store: ImageStore) -> None:
    data = image_bytes(33, 17, format="JPEG")
    record = add(store, "a.jpg", data)
    assert store.content(record.id) == data
    with pytest.raises(ImageNotFound):
        store.content("f" * 20)


# Filters and the names they match in FIXTURE_IMAGES.
FILTER_CASES = [
    ({}, set(FIXTURE_IMAGES)),
    ({"min_width": 20}, {"gamma.jpg", "delta.gif", "epsilon.png", "zeta 100%_off.webp",
                         "eta.bmp"}),
    ({"max_width": 10}, {"Alpha.png", "beta.png"}),
    ({"min_width": 20, "max_width": 20}, {"gamma.jpg", "epsilon.png", "eta.bmp"}),
    ({"min_height": 30}, {"beta.png", "delta.gif"}),
    ({"max_height": 10}, {"gamma.jpg", "zeta 100%_off.webp", "eta.bmp"}),
    ({"min_height": 20, "max_height": 20}, {"Alpha.png", "epsilon.png"}),
    ({"min_pixels": 400}, {"zeta 100%_off.webp", "delta.gif", "epsilon.png"}),
    ({"max_pixels": 200}, {"Alpha.png", "gamma.jpg", "eta.bmp"}),
    ({"min_pixels": 300, "max_height": 10}, {"zeta 100%_off.webp"}),
    ({"max_pixels": 200, "min_height": 20}, {"Alpha.png"}),
    ({"min_width": 20, "min_height": 20}, {"delta.gif", "epsilon.png"}),
    ({"max_width": 10, "max_height": 20, "min_pixels": 200}, {"Alpha.png"}),
    ({"format": ["png"]}, {"Alpha.png", "beta.png", "epsilon.png"}),
    ({"format": ["gif", "bmp"]}, {"delta.gif", "eta.bmp"}),
    ({"format": ["tiff"]}, set()),
    ({"orientation": "portrait"}, {"Alpha.png", "beta.png"}),
    ({"orientation": "square"}, {"delta.gif", "epsilon.png"}),
    ({"orientation": "landscape"}, {"gamma.jpg", "zeta 100%_off.webp", "eta.bmp"}),
    ({"name": "ALPHA"}, {"Alpha.png"}),
    ({"name": "ta"}, {"beta.png", "delta.gif", "zeta 100%_off.webp", "eta.bmp"}),
    ({"name": "%"}, {"zeta 100%_off.webp"}),
    ({"name": "_"}, {"zeta 100%_off.webp"}),
    ({"name": "a.p"}, {"Alpha.png", "beta.png"}),
    ({"name": "nothing"}, set()),
    ({"min_width": 20, "orientation": "landscape", "format": ["jpeg", "webp"]},
     {"gamma.jpg", "zeta 100%_off.webp"}),
]  # fmt: skip


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_filters(
    store: ImageStore,
    populated: dict[str, ImagePublic],
    filters: dict[str, object],
    expected: set[str],
) -> None:
    assert names(everything(store, **filters)) == expected


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_count_matches_the_filters(
    store: ImageStore,
    populated: dict[str, ImagePublic],
    filters: dict[str, object],
    expected: set[str],
) -> None:
    assert store.count(CountQuery.model_validate(filters)) == ImageCount(
        count=len(expected), exact=True
    )


def test_count_stops_one_past_its_limit(store: ImageStore) -> None:
    add_records(store, bulk_records(30))  # 20 JPEGs, 10 PNGs
    assert store.count(CountQuery()) == ImageCount(count=30, exact=True)
    assert store.count(CountQuery(limit=30)) == ImageCount(count=30, exact=True)
    assert store.count(CountQuery(limit=29)) == ImageCount(count=29, exact=False)
    assert store.count(CountQuery(limit=1)) == ImageCount(count=1, exact=False)
    assert store.count(CountQuery(format=["png"], limit=10)) == ImageCount(count=10, exact=True)
    assert store.count(CountQuery(format=["png"], limit=9)) == ImageCount(count=9, exact=False)
    # Square: width 100, every seventh record.
    square = {"orientation": "square", "min_width": 100, "max_width": 100}
    assert store.count(CountQuery(**square, limit=5)) == ImageCount(count=5, exact=True)
    assert store.count(CountQuery(**square, limit=4)) == ImageCount(count=4, exact=False)


def test_count_follows_adds_and_deletes(store: ImageStore) -> None:
    assert store.count(CountQuery()) == ImageCount(count=0, exact=True)
    first = add(store, "a.png", image_bytes(4, 3, seed=1))
    add(store, "b.png", image_bytes(3, 4, seed=2))
    assert store.count(CountQuery(orientation="landscape")) == ImageCount(count=1, exact=True)
    store.delete(first.id)
    assert store.count(CountQuery(orientation="landscape")) == ImageCount(count=0, exact=True)
    assert store.count(CountQuery()) == ImageCount(count=1, exact=True)


def test_name_filter_folds_unicode_case(store: ImageStore) -> None:
    add(store, "ÉTÉ.png", image_bytes(3, 3))
    assert names(everything(store, name="été")) == {"ÉTÉ.png"}


def sort_value(record: ImagePublic, field: str) -> object:
    return getattr(record, field)


@pytest.mark.parametrize("field", ["width", "height", "pixels", "created", "name"])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_breaks_ties_by_id(
    store: ImageStore, populated: dict[str, ImagePublic], field: str, descending: bool
) -> None:
    sort = f"-{field}" if descending else field
    got = everything(store, sort=sort)
    records = list(populated.values())
    expected = sorted(records, key=lambda r: (sort_value(r, field), r.id), reverse=descending)
    assert [r.id for r in got] == [r.id for r in expected]


def test_width_sort_exact_order(store: ImageStore, populated: dict[str, ImagePublic]) -> None:
    got = [(r.width, r.name) for r in everything(store, sort="width")]
    assert [w for w, _ in got] == [10, 10, 20, 20, 20, 30, 40]
    ids = [r.id for r in everything(store, sort="width")]
    assert ids[:2] == sorted([populated["Alpha.png"].id, populated["beta.png"].id])


def test_default_sort_is_newest_first(store: ImageStore) -> None:
    first = add(store, "first.png", image_bytes(4, 4, seed=1))
    second = add(store, "second.png", image_bytes(4, 4, seed=2))
    assert first.created <= second.created
    expected = sorted([first, second], key=lambda r: (r.created, r.id), reverse=True)
    assert [r.id for r in everything(store)] == [r.id for r in expected]


@pytest.mark.parametrize("sort", ["width", "-width", "height", "-pixels", "name", "-created"])
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_cursor_paging_walks_every_record_once(
    store: ImageStore, populated: dict[str, ImagePublic], sort: SortKey, limit: int
) -> None:
    walked: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.query(ImageQuery(sort=sort, limit=limit, cursor=cursor))
        walked.extend(item.id for item in page.items)
        pages += 1
        assert len(page.items) <= limit
        if page.next_cursor is None:
            break
        decode_cursor(page.next_cursor, sort)  # the cursor names its own sort
        cursor = page.next_cursor
    assert walked == [r.id for r in everything(store, sort=sort)]
    assert len(walked) == len(set(walked)) == len(FIXTURE_IMAGES)
    assert pages == -(-len(FIXTURE_IMAGES) // limit)


def test_paging_respects_filters(store: ImageStore, populated: dict[str, ImagePublic]) -> None:
    first = store.query(ImageQuery(min_width=20, sort="width", limit=3))
    assert [r.width for r in first.items] == [20, 20, 20]
    assert first.next_cursor is not None
    second = store.query(ImageQuery(min_width=20, sort="width", limit=3, cursor=first.next_cursor))
    assert [r.width for r in second.items] == [30, 40]
    assert second.next_cursor is None


def test_cursor_of_another_sort_is_rejected(
    store: ImageStore, populated: dict[str, ImagePublic]
) -> None:
    page = store.query(ImageQuery(sort="width", limit=2))
    assert page.next_cursor is not None
    with pytest.raises(ValidationError, match="cursor"):
        ImageQuery(sort="-width", cursor=page.next_cursor)


def test_empty_store_page(store: ImageStore) -> None:
    page = store.query(ImageQuery())
    assert (page.items, page.next_cursor) == ([], None)


def test_delete_removes_record_and_blob(backend: Backend) -> None:
    store = backend.store
    keep = add(store, "keep.png", image_bytes(8, 8, seed=1))
    gone = add(store, "gone.png", image_bytes(8, 8, seed=2))
    assert backend.count_blobs() == 2
    store.delete(gone.id)
    assert backend.count_blobs() == 1
    with pytest.raises(ImageNotFound):
        store.get(gone.id)
    with pytest.raises(ImageNotFound):
        store.content(gone.id)
    with pytest.raises(ImageNotFound):
        store.delete(gone.id)
    assert [r.id for r in everything(store)] == [keep.id]
    assert store.content(keep.id) == image_bytes(8, 8, seed=1)


def test_re_add_after_delete(backend: Backend) -> None:
    data = image_bytes(9, 9)
    record = add(backend.store, "a.png", data)
    backend.store.delete(record.id)
    again = add(backend.store, "a.png", data)
    assert again.id == record.id
    assert backend.store.content(again.id) == data
    assert backend.count_blobs() == 1


def test_stats(store: ImageStore, populated: dict[str, ImagePublic]) -> None:
    stats = store.stats()
    assert stats.count == 7
    assert stats.formats == {
        "jpeg": 1, "png": 3, "webp": 1, "gif": 1, "tiff": 0, "bmp": 1, "avif": 0, "heic": 0
    }  # fmt: skip
    assert stats.orientations == {"landscape": 3, "portrait": 2, "square": 2}
    assert (stats.min_width, stats.max_width) == (10, 40)
    assert (stats.min_height, stats.max_height) == (10, 30)


def test_stats_of_empty_store(store: ImageStore) -> None:
    stats = store.stats()
    assert stats.count == 0
    assert set(stats.formats.values()) == {0}
    assert (stats.min_width, stats.max_width, stats.min_height, stats.max_height) == (
        None, None, None, None,
    )  # fmt: skip


def test_phone_formats_are_kept_filtered_and_counted(store: ImageStore) -> None:
    # An iPhone's HEIC and a web AVIF, each turned on its side by EXIF: stored upright.
    heic, avif = oriented("heic", 6), oriented("avif", 8)
    phone = add(store, "IMG_0001.HEIC", heic)
    web = add(store, "cover.avif", avif)
    add(store, "a.jpg", image_bytes(30, 20, format="JPEG"))
    assert (phone.format, phone.width, phone.height, phone.exif_orientation) == ("heic", 48, 32, 6)
    assert (web.format, web.width, web.height, web.exif_orientation) == ("avif", 48, 32, 8)
    assert store.get(phone.id) == phone
    assert (store.content(phone.id), store.content(web.id)) == (heic, avif)
    assert names(everything(store, format=["heic"])) == {"IMG_0001.HEIC"}
    assert names(everything(store, format=["avif", "jpeg"])) == {"cover.avif", "a.jpg"}
    assert names(everything(store, format=["heic", "avif"], orientation="landscape")) == {
        "IMG_0001.HEIC", "cover.avif",
    }  # fmt: skip
    assert store.stats().formats == {
        "jpeg": 1, "png": 0, "webp": 0, "gif": 0, "tiff": 0, "bmp": 0, "avif": 1, "heic": 1
    }  # fmt: skip
    store.delete(phone.id)
    assert (store.stats().formats["heic"], store.stats().count) == (0, 2)


def test_concurrent_adds_of_the_same_bytes(backend: Backend) -> None:
    data = image_bytes(120, 80, seed=42)
    meta: ImageMeta = read_metadata(data, max_pixels=LIMIT)
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def upload(n: int) -> None:
        try:
            barrier.wait()
            record, created = backend.store.add(meta, f"copy-{n}.png", data)
            with lock:
                results.append((record.id, created))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert {record_id for record_id, _ in results} == {meta.sha256[:20]}
    assert sum(created for _, created in results) == 1
    assert len(everything(backend.store)) == 1
    assert backend.count_blobs() == 1
    assert backend.store.content(meta.sha256[:20]) == data


def test_name_filter_folds_like_casefold(store: ImageStore) -> None:
    add(store, "Straße.png", image_bytes(3, 3, seed=1))
    add(store, "a+b (1).png", image_bytes(3, 3, seed=2))
    assert names(everything(store, name="STRASSE")) == {"Straße.png"}
    assert names(everything(store, name="+B (")) == {"a+b (1).png"}
    assert names(everything(store, name=".*")) == set()


def test_name_sort_is_binary_order(store: ImageStore) -> None:
    for seed, name in enumerate(["b.png", "B.png", "a.png", "É.png", "_.png", "Z.png"]):
        add(store, name, image_bytes(3, 3, seed=seed))
    assert [r.name for r in everything(store, sort="name")] == [
        "B.png", "Z.png", "_.png", "a.png", "b.png", "É.png",
    ]  # fmt: skip


def test_created_survives_the_round_trip(store: ImageStore) -> None:
    record = add(store, "a.png", image_bytes(3, 3))
    assert record.created.microsecond % 1000 == 0  # milliseconds, what every store keeps
    assert store.get(record.id).created == record.created
    assert everything(store, sort="created")[0].created == record.created


def bulk_records(count: int) -> list[ImageRecord]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        ImageRecord.from_meta(
            ImageMeta(
                sha256=hashlib.sha256(b"%d" % n).hexdigest(),
                format="jpeg" if n % 3 else "png",
                mode="RGB",
                width=100 + n % 7,
                height=100,
                exif_orientation=1,
                bytes=10,
            ),
            name=f"bulk-{n}.jpg",
            created=start + timedelta(seconds=n),
        )
        for n in range(count)
    ]


def test_add_records_bulk_loads_metadata_and_counts(backend: Backend) -> None:
    store = backend.store
    assert add_records(store, bulk_records(30)) == 30
    assert backend.count_blobs() == 0
    stats = store.stats()
    assert stats.count == 30
    assert (stats.formats["jpeg"], stats.formats["png"]) == (20, 10)
    assert stats.orientations == {"landscape": 25, "portrait": 0, "square": 5}
    assert (stats.min_width, stats.max_width) == (100, 106)
    widest = everything(store, sort="-width", limit=5)
    assert [r.width for r in widest] == [106] * 4 + [105]
    store.delete(widest[0].id)
    assert store.stats().count == 29
    assert store.stats().formats["jpeg"] + store.stats().formats["png"] == 29


def test_failed_insert_leaves_no_orphan_original(backend: Backend) -> None:
    data = image_bytes(6, 6, seed=3)
    meta = read_metadata(data, max_pixels=LIMIT)
    # Another image's record already holds this id (a 20-hex-digit prefix collision),
    # so the insert must fail after the original was written.
    squatter = bulk_records(1)[0].model_copy(update={"id": meta.sha256[:20]})
    add_records(backend.store, [squatter])
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error
        backend.store.add(meta, "new.png", data)
    assert backend.count_blobs() == 0
    assert backend.store.get(squatter.id).sha256 == squatter.sha256
    assert len(everything(backend.store)) == 1


def test_sweep_deletes_unreferenced_originals_past_the_grace_only(backend: Backend) -> None:
    store = backend.store
    kept_bytes = image_bytes(8, 8, seed=1)
    kept = add(store, "kept.png", kept_bytes)
    add_records(store, bulk_records(3))  # records without originals are no trouble
    backend.plant_orphan(image_bytes(8, 8, seed=2), timedelta(hours=2))
    backend.plant_orphan(image_bytes(8, 8, seed=3), timedelta(hours=2))
    backend.plant_orphan(image_bytes(8, 8, seed=4), timedelta(0))  # an upload in flight
    assert backend.count_blobs() == 4
    assert store.sweep_orphans(timedelta(hours=1)) == 2
    assert backend.count_blobs() == 2
    assert store.sweep_orphans(timedelta(hours=1)) == 0
    # With no grace, whatever no record references goes, and nothing else.
    assert store.sweep_orphans(timedelta(0)) == 1
    assert backend.count_blobs() == 1
    assert store.content(kept.id) == kept_bytes
    assert store.stats().count == 4


def test_sweep_of_an_empty_store_deletes_nothing(backend: Backend) -> None:
    assert backend.store.sweep_orphans(timedelta(0)) == 0


def test_sweep_stops_when_asked(backend: Backend) -> None:
    backend.plant_orphan(image_bytes(8, 8, seed=5), timedelta(hours=2))
    stop = threading.Event()
    stop.set()
    assert backend.store.sweep_orphans(timedelta(hours=1), stop=stop) == 0
    assert backend.count_blobs() == 1


def test_sweeping_during_uploads_keeps_every_record_whole(backend: Backend) -> None:
    """Uploads retried after a crash (their old originals still there) race repeated sweeps."""
    store = backend.store
    images = [image_bytes(24, 16, seed=200 + n) for n in range(12)]
    for data in images[:6]:
        backend.plant_orphan(data, timedelta(hours=2))
    uploads_done = threading.Event()
    errors: list[BaseException] = []
    sweeps = 0

    def sweep_until_uploads_are_done() -> None:
        nonlocal sweeps
        try:
            for _ in range(500):
                store.sweep_orphans(timedelta(hours=1))
                sweeps += 1
                if uploads_done.is_set():
                    return
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def upload(data: bytes) -> None:
        try:
            store.add(read_metadata(data, max_pixels=LIMIT), "retried.png", data)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    sweeper = threading.Thread(target=sweep_until_uploads_are_done)
    uploaders = [threading.Thread(target=upload, args=(data,)) for data in images]
    sweeper.start()
    for thread in uploaders:
        thread.start()
    for thread in uploaders:
        thread.join(30)
    uploads_done.set()
    sweeper.join(30)
    assert errors == []
    assert sweeps >= 1
    store.sweep_orphans(timedelta(hours=1))
    by_sha = {hashlib.sha256(data).hexdigest(): data for data in images}
    records = everything(store)
    assert {record.sha256 for record in records} == set(by_sha)
    for record in records:
        assert store.content(record.id) == by_sha[record.sha256]
    assert backend.count_blobs() == len(images)
