"""The orphan sweep: each store's own leftovers, its races with uploads, and the sweeper thread.

The contract suite (tests/contract/test_image_store.py) checks what every store must do;
these check what only one store can leave behind (SQLite's temp files, GridFS's unfinished
chunks and extra copies), the interleavings SQLite's write lock must make safe, and that
the app sweeps at start, logs the count and stops the thread on shutdown.
"""

import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import ObjectId
from fastapi.testclient import TestClient
from PIL import Image

from catalog.blobs import BlobStore
from catalog.config import Settings
from catalog.main import create_app
from catalog.metadata import read_metadata
from catalog.models import ImageRecord
from catalog.store.bulk import add_records
from catalog.store.mongo import MongoImageStore
from catalog.store.sqlite import SqliteImageStore
from catalog.sweeper import OrphanSweeper
from tests.contract.mongomock_store import mongomock_store

LIMIT = 50_000_000
HOUR = timedelta(hours=1)


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (seed % 256, 3, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


def backdate(path: Path, age: timedelta) -> None:
    moment = time.time() - age.total_seconds()
    os.utime(path, (moment, moment))


def wait_until(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


# --- SQLite: temp files, foreign files, and the write lock -------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteImageStore]:
    store = SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    yield store
    store.close()


def test_old_temp_files_go_young_ones_and_foreign_files_stay(
    sqlite_store: SqliteImageStore,
) -> None:
    root = sqlite_store.blobs.root
    shard = root / "ab" / "cd"
    shard.mkdir(parents=True)
    old_temp, young_temp = shard / ".tmp-interrupted", shard / ".tmp-in-flight"
    foreign = [root / "README", shard / "notes.txt", root / "zz" / "zz" / ("f" * 64)]
    for path in [old_temp, young_temp, *foreign]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    for path in [old_temp, *foreign]:
        backdate(path, 2 * HOUR)
    assert sqlite_store.sweep_orphans(HOUR) == 1
    assert not old_temp.exists()
    assert young_temp.exists()
    assert all(path.exists() for path in foreign)


def test_a_blob_swept_before_its_record_is_written_again(tmp_path: Path) -> None:
    """Sweeping (with no grace) between an add's blob write and its record loses nothing."""

    class PausingBlobs(BlobStore):
        """Pauses the first put after the file is written, until told to go on."""

        written = threading.Event()
        resume = threading.Event()

        def put(self, sha256: str, data: bytes) -> None:
            super().put(sha256, data)
            if not self.written.is_set():
                self.written.set()
                assert self.resume.wait(10)

    blobs = PausingBlobs(tmp_path / "blobs")
    store = SqliteImageStore(tmp_path / "catalog.db", blobs)
    data = png(1)
    meta = read_metadata(data, max_pixels=LIMIT)
    added: list[tuple[ImageRecord, bool]] = []
    adding = threading.Thread(target=lambda: added.append(store.add(meta, "a.png", data)))
    adding.start()
    try:
        assert blobs.written.wait(10)
        assert store.sweep_orphans(timedelta(0)) == 1  # no record yet: it looked orphaned
        assert not blobs.exists(meta.sha256)
    finally:
        blobs.resume.set()
        adding.join(10)
    record, created = added[0]
    assert created
    assert store.content(record.id) == data
    assert blobs.count() == 1
    store.close()


def test_a_record_written_while_the_sweep_looked_keeps_its_blob(tmp_path: Path) -> None:
    """The sweep's first look finds no record; one is committed before it takes the lock."""

    class RecordLandsFirst(SqliteImageStore):
        """Commits `landing` just before the next write transaction, as an add would."""

        landing: ImageRecord | None = None

        @contextmanager
        def write(self) -> Iterator[Any]:
            record, self.landing = self.landing, None
            if record is not None:
                add_records(self, [record])
            with super().write() as connection:
                yield connection

    store = RecordLandsFirst(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    data = png(2)
    meta = read_metadata(data, max_pixels=LIMIT)
    store.blobs.put(meta.sha256, data)
    backdate(store.blobs.path(meta.sha256), 2 * HOUR)
    store.landing = ImageRecord.from_meta(meta, name="late.png")
    assert store.sweep_orphans(HOUR) == 0
    assert store.landing is None  # the record did land in between
    assert store.content(meta.sha256[:20]) == data
    store.close()


def test_a_crash_in_a_delete_leaves_no_record_without_its_original(tmp_path: Path) -> None:
    """The process dies right after the original is unlinked: the record must be gone already."""

    class Crash(BaseException):
        pass

    class DyingBlobs(BlobStore):
        def delete(self, sha256: str) -> None:
            super().delete(sha256)
            raise Crash

    store = SqliteImageStore(tmp_path / "catalog.db", DyingBlobs(tmp_path / "blobs"))
    data = png(3)
    record, _ = store.add(read_metadata(data, max_pixels=LIMIT), "a.png", data)
    with pytest.raises(Crash):
        store.delete(record.id)
    store.close()
    reopened = SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    rows = reopened.connection().execute("SELECT sha256 FROM images").fetchall()
    assert [row["sha256"] for row in rows if not reopened.blobs.exists(row["sha256"])] == []
    reopened.close()


# --- GridFS: extra copies, unfinished uploads, files of others ---------------------------


@pytest.fixture
def mongo() -> Iterator[tuple[MongoImageStore, Any]]:
    store, client = mongomock_store()
    yield store, client[store.database_name]
    store.close()


def old_id(age: timedelta) -> ObjectId:
    """A unique ObjectId made `age` ago."""
    made = datetime.now(UTC) - age
    return ObjectId(int(made.timestamp()).to_bytes(4, "big") + os.urandom(8))


def test_a_second_copy_of_a_stored_image_is_an_orphan(mongo: tuple[MongoImageStore, Any]) -> None:
    store, database = mongo
    data = png(4)
    meta = read_metadata(data, max_pixels=LIMIT)
    record, _ = store.add(meta, "a.png", data)
    kept = database["images"].find_one({"_id": record.id})["blob"]
    # A concurrent upload of the same bytes that lost the race, then crashed before cleaning up.
    files = database["fs.files"]
    loser = gridfs.GridFS(database).put(
        data, _id=old_id(2 * HOUR), metadata={"sha256": meta.sha256}
    )
    files.update_one({"_id": loser}, {"$set": {"uploadDate": datetime.now(UTC) - 2 * HOUR}})
    assert store.sweep_orphans(timedelta(0)) == 1
    assert [file["_id"] for file in files.find()] == [kept]
    assert store.content(record.id) == data


def test_chunks_of_unfinished_uploads_go_once_old(mongo: tuple[MongoImageStore, Any]) -> None:
    store, database = mongo
    chunks = database["fs.chunks"]
    old, young = old_id(2 * HOUR), old_id(timedelta(0))
    for files_id in (old, young):
        chunks.insert_many([{"files_id": files_id, "n": n, "data": b"x" * 10} for n in range(3)])
    assert store.sweep_orphans(HOUR) == 1
    assert {chunk["files_id"] for chunk in chunks.find()} == {young}


def test_files_the_store_did_not_write_are_left_alone(mongo: tuple[MongoImageStore, Any]) -> None:
    store, database = mongo
    foreign = gridfs.GridFS(database).put(b"someone else's", _id=old_id(2 * HOUR))
    assert store.sweep_orphans(timedelta(0)) == 0
    assert database["fs.files"].find_one({"_id": foreign}) is not None


# --- The sweeper thread and the app ---------------------------------------------------------


class CountingStore:
    """Stands in for a store: each sweep returns the next of `results` (an exception raises)."""

    def __init__(self, *results: int | Exception) -> None:
        self.results = list(results)
        self.calls: list[timedelta] = []
        self.swept = threading.Event()

    def sweep_orphans(self, older_than: timedelta, *, stop: threading.Event | None = None) -> int:
        self.calls.append(older_than)
        result = self.results.pop(0) if self.results else 0
        if not self.results:
            self.swept.set()
        if isinstance(result, Exception):
            raise result
        return result


def test_sweeper_sweeps_at_start_then_every_interval_and_logs_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="catalog.sweeper")
    store = CountingStore(RuntimeError("server gone"), 3, 0)
    sweeper = OrphanSweeper(store, grace_s=90, interval_s=0.01)  # type: ignore[arg-type]
    sweeper.start()
    try:
        assert store.swept.wait(10)
    finally:
        sweeper.stop()
    assert store.calls[:3] == [timedelta(seconds=90)] * 3
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0][0] == "ERROR" and "orphan sweep failed" in lines[0][1]  # and went on
    assert lines[1][0] == "WARNING"
    assert lines[1][1].startswith(
        "orphan sweep: deleted 3 unreferenced original(s) older than 90 s"
    )
    assert lines[2][0] == "INFO"
    assert lines[2][1].startswith("orphan sweep: deleted 0 ")


def test_stop_ends_a_long_sweep_and_the_wait(tmp_path: Path) -> None:
    started = threading.Event()

    class SlowStore:
        def sweep_orphans(
            self, older_than: timedelta, *, stop: threading.Event | None = None
        ) -> int:
            started.set()
            assert stop is not None
            stop.wait(10)  # a sweep of many batches, checking `stop` between them
            return 0

    sweeper = OrphanSweeper(SlowStore(), grace_s=0, interval_s=600)  # type: ignore[arg-type]
    sweeper.start()
    assert started.wait(10)
    began = time.monotonic()
    sweeper.stop()
    assert time.monotonic() - began < 5
    assert not any(thread.name == "orphan-sweeper" for thread in threading.enumerate())


def sweeping_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        store=f"sqlite:///{tmp_path / 'catalog.db'}",
        blobs=tmp_path / "blobs",
        **overrides,
    )


def test_the_app_sweeps_at_start_and_stops_the_thread_on_shutdown(tmp_path: Path) -> None:
    settings = sweeping_settings(tmp_path, orphan_grace_s=3600)
    blobs = BlobStore(settings.blobs)
    old, young = png(5), png(6)
    for data, age in ((old, 2 * HOUR), (young, timedelta(0))):
        digest = hashlib.sha256(data).hexdigest()
        blobs.put(digest, data)
        backdate(blobs.path(digest), age)
    with TestClient(create_app(settings=settings)):
        assert wait_until(lambda: blobs.count() == 1)
        assert blobs.exists(hashlib.sha256(young).hexdigest())
    assert not any(thread.name == "orphan-sweeper" for thread in threading.enumerate())


def test_an_interval_of_zero_turns_sweeping_off(tmp_path: Path) -> None:
    settings = sweeping_settings(tmp_path, orphan_grace_s=0, sweep_interval_s=0)
    blobs = BlobStore(settings.blobs)
    data = png(7)
    blobs.put(hashlib.sha256(data).hexdigest(), data)
    with TestClient(create_app(settings=settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert not any(thread.name == "orphan-sweeper" for thread in threading.enumerate())
    assert blobs.count() == 1


def test_sweep_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().orphan_grace_s, Settings().sweep_interval_s) == (600, 600)
    monkeypatch.setenv("CATALOG_ORPHAN_GRACE_S", "0")
    monkeypatch.setenv("CATALOG_SWEEP_INTERVAL_S", "30")
    assert (Settings().orphan_grace_s, Settings().sweep_interval_s) == (0, 30)
    monkeypatch.setenv("CATALOG_ORPHAN_GRACE_S", "-1")
    with pytest.raises(ValueError, match="orphan_grace_s"):
        Settings()
