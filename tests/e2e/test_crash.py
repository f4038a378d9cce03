"""SIGKILL the catalog in the middle of 50 concurrent uploads: nothing half-written survives.

A real uvicorn catalog on SQLite takes a few uploads, then a burst of 50 concurrent ones
and is killed once some of the burst have been answered, with the rest in flight. Restarted
with no grace period, its start-up sweep must leave no original without a record and no
record without its original, every upload answered before the kill must read back byte for
byte, and SQLite must pass its integrity check.
"""

import io
import secrets
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.stack import Service, free_port

pytestmark = pytest.mark.e2e

BURST = 50
# Kill once this many of the burst are answered: the others are then being received,
# verified or written.
KILL_AFTER = 5
EARLIER = 3
KEY = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {KEY}"}


def noise_jpeg(seed: int, width: int = 1200, height: int = 900) -> bytes:
    """A distinct JPEG of about 1 MB: noise does not compress, so each upload takes a while."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def catalog(workdir: Path, log_name: str, **settings: str) -> Service:
    env = {
        "CATALOG_STORE": f"sqlite:///{workdir / 'catalog.db'}",
        "CATALOG_BLOBS": str(workdir / "blobs"),
        "CATALOG_API_KEYS": KEY,
        "CATALOG_READ_KEYS": "",
        **settings,
    }
    return Service("catalog", free_port(), env, workdir / log_name)


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[Service]:
    service = catalog(tmp_path, "catalog-1.log")
    service.start()
    try:
        yield service
    finally:
        service.stop()


def upload(client: httpx.Client, data: bytes, name: str) -> httpx.Response:
    return client.post("/v1/images", params={"name": name}, content=data, headers=AUTH)


def burst_until_killed(service: Service, images: list[bytes]) -> dict[str, bytes]:
    """Upload every image at once and SIGKILL the service mid-burst; the answered ones by id."""
    answered: dict[str, bytes] = {}
    failed: list[BaseException] = []
    lock = threading.Lock()
    kill_now = threading.Event()
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)

    with httpx.Client(base_url=service.url, limits=limits, timeout=20) as client:

        def send(n: int) -> None:
            try:
                response = upload(client, images[n], f"burst-{n}.jpg")
            except httpx.HTTPError as exc:  # the kill cut it off
                with lock:
                    failed.append(exc)
                return
            assert response.status_code == 201, response.text
            with lock:
                answered[response.json()["id"]] = images[n]
                if len(answered) >= KILL_AFTER:
                    kill_now.set()

        with ThreadPoolExecutor(max_workers=BURST) as pool:
            futures = [pool.submit(send, n) for n in range(BURST)]
            assert kill_now.wait(20), "the burst was not answered in time"
            assert service.process is not None
            service.process.send_signal(signal.SIGKILL)
            service.process.wait(10)
            with lock:
                at_kill = dict(answered)
            done, pending = wait(futures, timeout=30)
            assert not pending
            for future in done:
                future.result()  # an unexpected answer fails here
    assert KILL_AFTER <= len(at_kill) < BURST, "the kill did not land mid-burst"
    assert failed, "every upload was answered: nothing was in flight at the kill"
    return at_kill


def plant_leftovers(blobs: Path) -> None:
    """Leftovers of a crash at any moment, whatever this kill left: a temp file and a blob."""
    shard = blobs / "00" / "00"
    shard.mkdir(parents=True, exist_ok=True)
    (shard / ".tmp-killed-mid-write").write_bytes(b"\xff\xd8partial")
    (shard / ("0000" + "ab" * 30)).write_bytes(b"an original whose record never came")


def wait_for_sweep(log: Path, timeout_s: float = 15.0) -> str:
    """The start-up sweep's log line, once it is written."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "orphan sweep:" in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no sweep line in {timeout_s} s:\n{log.read_text()}")


def blob_files(blobs: Path) -> dict[Path, str]:
    """Every file under the blob folder, temp files included, with its name."""
    return {path: path.name for path in blobs.rglob("*") if path.is_file()}


def test_sigkill_mid_upload_leaves_nothing_half_written(tmp_path: Path, first_run: Service) -> None:
    earlier = {}
    with httpx.Client(base_url=first_run.url, timeout=20) as client:
        assert client.post("/v1/images", content=noise_jpeg(0)).status_code == 401
        for n in range(1, EARLIER + 1):
            data = noise_jpeg(n, 400, 300)
            response = upload(client, data, f"earlier-{n}.jpg")
            assert response.status_code == 201, response.text
            earlier[response.json()["id"]] = data

    burst = [noise_jpeg(1000 + n) for n in range(BURST)]
    answered = burst_until_killed(first_run, burst)

    blobs = tmp_path / "blobs"
    plant_leftovers(blobs)
    restarted = catalog(tmp_path, "catalog-2.log", CATALOG_ORPHAN_GRACE_S="0")
    restarted.start()
    try:
        assert "deleted" in wait_for_sweep(restarted.log)
        with httpx.Client(base_url=restarted.url, timeout=20) as client:
            for image_id, data in {**earlier, **answered}.items():
                content = client.get(f"/v1/images/{image_id}/content")
                assert content.status_code == 200, content.text
                assert content.content == data
    finally:
        restarted.stop()

    with sqlite3.connect(tmp_path / "catalog.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        digests = {row[0] for row in database.execute("SELECT sha256 FROM images")}
    files = blob_files(blobs)
    expected = {blobs / d[:2] / d[2:4] / d for d in digests}
    orphans = sorted(str(path.relative_to(blobs)) for path in files.keys() - expected)
    dangling = sorted(str(path.relative_to(blobs)) for path in expected - files.keys())
    assert orphans == []
    assert dangling == []
    assert len(digests) >= EARLIER + len(answered)
