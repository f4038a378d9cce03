"""The backfill computes the photo metadata of records stored without it, from their originals:
it fills what ingest would have, skips what it cannot read, resumes, and is idempotent."""

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from catalog.backfill import backfill
from catalog.config import Settings
from catalog.ingest import kept
from catalog.metadata import read_metadata, verified_metadata
from catalog.models import ImageQuery, ImageRecord, PhotoMeta
from catalog.store import ImageStore, open_store
from catalog.store.bulk import add_records, drop
from tests.catalog.test_photo_metadata import camera_exif
from tests.catalog.test_photo_queries import photo_record
from tests.contract.mongomock_store import mongomock_store
from tests.imaging import encoded, upright_picture

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50_000_000


def photos() -> dict[str, bytes]:
    """Named originals: a camera JPEG with EXIF, the samples, and a near copy of one."""
    coffee = (ROOT / "samples" / "coffee.png").read_bytes()
    with Image.open(io.BytesIO(coffee)) as image:
        pixels = np.asarray(image.convert("RGB")).copy()
    pixels[0, 0] = (0, 0, 0)  # another file, the same picture to the eye
    return {
        "camera.jpg": encoded("jpeg", upright_picture(), exif=camera_exif()),
        "coffee.png": coffee,
        "coffee-copy.png": encoded("png", pixels),
        "rocket.jpg": (ROOT / "samples" / "rocket.jpg").read_bytes(),
        "chelsea.png": (ROOT / "samples" / "chelsea.png").read_bytes(),
    }


@pytest.fixture(params=["sqlite", "mongomock"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    """A store holding the photos as records made before photo metadata (header only)."""
    if request.param == "sqlite":
        opened: ImageStore = open_store(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "b")
    else:
        opened = mongomock_store()[0]
    for name, data in photos().items():
        opened.add(read_metadata(data, max_pixels=LIMIT), name, data)
    yield opened
    drop(opened)
    opened.close()


def records(store: ImageStore) -> dict[str, ImageRecord]:
    """Every record by name (the stores return records)."""
    page = store.query(ImageQuery(sort="name", limit=200))
    return {r.name: r for r in page.items if isinstance(r, ImageRecord)}


def test_backfill_fills_what_ingest_would_have(store: ImageStore) -> None:
    settings = Settings()
    before = records(store)
    assert all(r.colour is None and r.phash is None for r in before.values())
    counts = backfill(store, settings, progress=False)
    assert (counts.filled, counts.skipped) == (len(before), {})
    after = records(store)
    for name, data in photos().items():
        meta = kept(verified_metadata(data, max_pixels=LIMIT), settings)
        assert meta.photo is not None
        expected = after[name].model_copy(update=meta.photo.fields())
        assert after[name] == expected
        # Everything else is as it was.
        assert after[name].model_copy(update=dict.fromkeys(PhotoMeta().fields())) == before[name]
    camera = after["camera.jpg"]
    assert (
        camera.taken_at == "2024-05-01T14:03:22+02:00" and camera.camera == "Canon EOS 5D Mark IV"
    )
    assert camera.has_location and camera.location is None  # CATALOG_KEEP_GPS is off
    assert [(c.camera, c.count) for c in store.cameras()] == [("Canon EOS 5D Mark IV", 1)]


def test_backfilled_hashes_are_indexed_for_similar(store: ImageStore) -> None:
    backfill(store, Settings(), progress=False)
    by_name = records(store)
    near = store.similar(by_name["coffee.png"].id, 4, 10)
    assert [item.image.name for item in near.items] == ["coffee-copy.png"]


def test_a_second_run_finds_nothing_to_do(store: ImageStore) -> None:
    backfill(store, Settings(), progress=False)
    filled = records(store)
    again = backfill(store, Settings(), progress=False)
    assert (again.filled, again.skipped) == (0, {})
    assert records(store) == filled


class Interrupted(Exception):
    """Raised by StopsAfter to end a run part way."""


class StopsAfter:
    """A store that fails its set_photo call number `calls + 1`, as a crash would."""

    def __init__(self, store: ImageStore, calls: int) -> None:
        self._store = store
        self._left = calls

    def set_photo(self, image_id: str, photo: PhotoMeta) -> ImageRecord:
        if self._left == 0:
            raise Interrupted
        self._left -= 1
        return self._store.set_photo(image_id, photo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_an_interrupted_run_is_resumed_by_the_next(store: ImageStore) -> None:
    with pytest.raises(Interrupted):
        backfill(StopsAfter(store, 2), Settings(), batch=1, progress=False)
    assert sum(r.colour is not None for r in records(store).values()) == 2
    counts = backfill(store, Settings(), batch=2, progress=False)
    assert (counts.filled, counts.skipped) == (3, {})
    assert all(r.phash is not None for r in records(store).values())
    # Each hash was indexed once: the copy finds only its original.
    copy = records(store)["coffee-copy.png"]
    assert [i.image.name for i in store.similar(copy.id, 4, 10).items] == ["coffee.png"]


def test_records_without_a_readable_original_are_skipped_and_kept(store: ImageStore) -> None:
    add_records(store, [photo_record(1).model_copy(update=dict.fromkeys(PhotoMeta().fields()))])
    counts = backfill(store, Settings(), progress=False)
    assert counts.filled == len(photos())
    assert list(counts.skipped.values()) == ["its original is missing"]
    assert backfill(store, Settings(), progress=False).skipped == counts.skipped


def test_the_command_backfills_a_catalog_with_a_progress_bar(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    store = open_store(url, tmp_path / "blobs")
    for name, data in photos().items():
        store.add(read_metadata(data, max_pixels=LIMIT), name, data)
    store.close()
    command = [sys.executable, "-m", "catalog.backfill", "--store", url, "--blobs"]
    env = {**os.environ, "CATALOG_KEEP_GPS": "true"}
    done = subprocess.run(
        [*command, str(tmp_path / "blobs")], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"filled {len(photos())}, skipped 0"
    assert "backfilling" in done.stderr
    store = open_store(url, tmp_path / "blobs")
    try:
        camera = records(store)["camera.jpg"]
        assert camera.location is not None and round(camera.location.lat, 3) == 48.858
    finally:
        store.close()
    again = subprocess.run(
        [*command, str(tmp_path / "blobs")], capture_output=True, text=True, timeout=60
    )
    assert again.stdout.strip() == "filled 0, skipped 0"
    bad = subprocess.run(
        [*command, str(tmp_path / "blobs"), "--batch", "0"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--batch" in bad.stderr
