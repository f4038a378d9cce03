"""The photos people have: every format, phones' JPEGs, orientation once, undecodable refused.

Pictures are generated (``tests/imaging.py``): ``oriented(fmt, o)`` stores the 48x32
``upright_picture()`` the way a camera does under EXIF orientation ``o``, so a catalog that
applies the orientation exactly once reports 48x32, landscape, for every ``o``.
"""

import io
import struct
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalog.config import Settings
from catalog.errors import ImageTooLarge, UnreadableImage
from catalog.importer import main
from catalog.main import create_app
from catalog.metadata import read_metadata, verified_metadata
from catalog.models import FORMATS, ImageRecord
from tests.contract.mongomock_store import mongomock_store
from tests.imaging import (
    EXIF_ORIENTATION,
    ORIENTABLE,
    encoded,
    oriented,
    stored_pixels,
    upright_picture,
)

LIMIT = 50_000_000
ORIENTATIONS = range(1, 9)
# Extensions people's files carry, by the catalog's format name.
EXTENSIONS = {"jpeg": "jpg", "png": "png", "heic": "heic", "avif": "avif"}
# Truncated through the API and the importer; read_metadata tests cut every format.
CUT_FORMATS = ("jpeg", "png", "heic", "avif")


@cache
def picture(fmt: str, orientation: int) -> bytes:
    """oriented(), encoded once per test run: HEIC and AVIF encoders are not free."""
    return oriented(fmt, orientation)


@cache
def noisy(fmt: str) -> bytes:
    """A 96x64 picture of noise: the file is nearly all pixel data, so a cut lands in it."""
    pixels = np.random.default_rng(7).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    return encoded(fmt, pixels)


def cut(data: bytes) -> bytes:
    """The first 60% of the file: past the header, into the pixel data."""
    return data[: len(data) * 6 // 10]


def mpo(orientation: int) -> bytes:
    """A phone's multi-picture JPEG: the picture stored under orientation, and a preview."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    main_picture = Image.fromarray(stored_pixels(upright_picture(), orientation))
    preview = main_picture.resize((main_picture.width // 4, main_picture.height // 4))
    buffer = io.BytesIO()
    main_picture.save(buffer, "MPO", save_all=True, append_images=[preview], exif=exif)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_with_exif_after_pixels(orientation: int, *, corrupt_pixels: bool = False) -> bytes:
    """A PNG whose eXIf chunk follows the pixel data (as some tools write it)."""
    data = bytearray(encoded("png", stored_pixels(upright_picture(), orientation)))
    if corrupt_pixels:
        start = data.index(b"IDAT") + 4
        data[start : start + 8] = b"\xff" * 8
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    payload = exif.tobytes().removeprefix(b"Exif\x00\x00")  # eXIf holds the bare TIFF structure
    end = data.index(b"IEND") - 4
    assert data.index(b"IDAT") < end
    return bytes(data[:end]) + png_chunk(b"eXIf", payload) + bytes(data[end:])


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height: its pixel data could never decode."""
    data = bytearray(encoded("png", np.zeros((1, 1, 3), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture(params=["sqlite", "mongomock"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A client of the app on each store: formats must not depend on the backend."""
    store = mongomock_store()[0] if request.param == "mongomock" else None
    settings = Settings(store=f"sqlite:///{tmp_path / 'catalog.db'}", blobs=tmp_path / "blobs")
    with TestClient(create_app(settings=settings, store=store)) as test_client:
        yield test_client


def post(client: TestClient, name: str, data: bytes) -> Any:
    return client.post("/v1/images", params={"name": name}, content=data)


def test_vocabulary_has_the_new_formats() -> None:
    assert FORMATS == ("jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_read_and_verified(fmt: str) -> None:
    data = encoded(fmt, upright_picture())
    for read in (read_metadata, verified_metadata):
        meta = read(data, max_pixels=LIMIT)
        assert (meta.format, meta.width, meta.height, meta.exif_orientation) == (fmt, 48, 32, 1)
        assert meta.bytes == len(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_stored_filtered_counted_and_served(client: TestClient, fmt: str) -> None:
    data = encoded(fmt, upright_picture())
    response = post(client, f"picture.{fmt}", data)
    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["format"], record["width"], record["height"]) == (fmt, 48, 32)
    content = client.get(f"/v1/images/{record['id']}/content")
    assert (content.headers["content-type"], content.content) == (f"image/{fmt}", data)
    assert [r["id"] for r in client.get("/v1/images", params={"format": fmt}).json()["items"]] == [
        record["id"]
    ]
    others = [f for f in FORMATS if f != fmt]
    assert client.get("/v1/images", params={"format": others}).json()["items"] == []
    assert client.get("/v1/stats").json()["formats"] == {f: int(f == fmt) for f in FORMATS}


def test_a_phones_multi_picture_jpeg_is_a_jpeg(client: TestClient) -> None:
    data = mpo(6)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "MPO"  # what Pillow calls it
    meta = verified_metadata(data, max_pixels=LIMIT)
    assert (meta.format, meta.width, meta.height, meta.exif_orientation) == ("jpeg", 48, 32, 6)
    response = post(client, "IMG_0001.JPG", data)
    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["orientation"]) == ("jpeg", "landscape")
    content = client.get(f"/v1/images/{response.json()['id']}/content")
    assert content.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_orientation_is_applied_exactly_once(fmt: str, orientation: int) -> None:
    data = picture(fmt, orientation)
    for read in (read_metadata, verified_metadata):
        meta = read(data, max_pixels=LIMIT)
        assert (meta.width, meta.height) == (48, 32)
        assert meta.exif_orientation == orientation  # what the file carries
        assert ImageRecord.from_meta(meta, name="x").orientation == "landscape"


@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_uploads_are_upright_in_every_orientation(client: TestClient, fmt: str) -> None:
    seen = {}
    for orientation in ORIENTATIONS:
        response = post(client, f"o{orientation}.{fmt}", picture(fmt, orientation))
        assert response.status_code == 201, response.text
        record = response.json()
        seen[orientation] = (record["width"], record["height"], record["orientation"])
        assert record["exif_orientation"] == orientation
    assert seen == dict.fromkeys(ORIENTATIONS, (48, 32, "landscape"))
    assert client.get("/v1/stats").json()["orientations"]["landscape"] == 8


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_exif_after_the_pixel_data_counts(orientation: int) -> None:
    meta = read_metadata(png_with_exif_after_pixels(orientation), max_pixels=LIMIT)
    assert (meta.width, meta.height, meta.exif_orientation) == (48, 32, orientation)


def test_png_exif_after_the_pixel_data_is_read_without_inflating() -> None:
    data = png_with_exif_after_pixels(6, corrupt_pixels=True)
    meta = read_metadata(data, max_pixels=LIMIT)  # the broken pixels are never touched
    assert (meta.width, meta.height, meta.exif_orientation) == (48, 32, 6)
    with pytest.raises(UnreadableImage, match=r"^corrupt png image: its pixels cannot be decoded"):
        verified_metadata(data, max_pixels=LIMIT)


@pytest.mark.parametrize("fmt", CUT_FORMATS)
def test_truncated_file_is_refused_and_a_whole_one_kept(client: TestClient, fmt: str) -> None:
    whole = noisy(fmt)
    response = post(client, f"cut.{EXTENSIONS[fmt]}", cut(whole))
    body = response.json()
    assert (response.status_code, body["error"]["code"]) == (415, "unreadable_image")
    assert body["error"]["message"].startswith(f"truncated {fmt} image: its "), body
    assert client.get("/v1/stats").json()["count"] == 0
    kept = post(client, f"whole.{EXTENSIONS[fmt]}", whole)
    assert (kept.status_code, kept.json()["format"]) == (201, fmt)
    assert client.get("/v1/stats").json()["count"] == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_truncated_format_is_named_truncated(fmt: str) -> None:
    with pytest.raises(UnreadableImage, match=f"^truncated {fmt} image: its ") as caught:
        verified_metadata(cut(noisy(fmt)), max_pixels=LIMIT)
    assert (caught.value.status, caught.value.code) == (415, "unreadable_image")


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("webp", "avif")])
def test_the_header_of_a_truncated_file_still_reads(fmt: str) -> None:
    # Pillow's WebP and AVIF plugins parse the whole file to open it; the others do not.
    data = cut(noisy(fmt))
    assert read_metadata(data, max_pixels=LIMIT).width == 96
    with pytest.raises(UnreadableImage, match=f"^truncated {fmt} image: its pixels cannot be"):
        verified_metadata(data, max_pixels=LIMIT)


def test_corrupt_png_pixels_are_refused(client: TestClient) -> None:
    data = bytearray(noisy("png"))
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\xff" * 8  # garbage where the compressed pixels start
    response = post(client, "broken.png", bytes(data))
    assert response.status_code == 415
    assert response.json()["error"]["message"].startswith(
        "corrupt png image: its pixels cannot be decoded ("
    )


def test_pixel_limit_is_checked_before_decoding() -> None:
    # The pixel data of this file cannot decode: a 413 proves the header was judged first.
    with pytest.raises(ImageTooLarge, match="100000x100000"):
        verified_metadata(png_claiming(100_000, 100_000), max_pixels=LIMIT)
    with pytest.raises(UnreadableImage, match=r"^truncated png image"):
        verified_metadata(png_claiming(100, 50), max_pixels=LIMIT)


def test_importer_skips_undecodable_files_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for fmt in CUT_FORMATS:
        (photos / f"cut.{EXTENSIONS[fmt]}").write_bytes(cut(noisy(fmt)))
        (photos / f"whole.{EXTENSIONS[fmt]}").write_bytes(noisy(fmt))
    store = ["--store", f"sqlite:///{tmp_path / 'catalog.db'}", "--blobs", str(tmp_path / "b")]
    assert main([*store, str(photos)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "imported 4, duplicates 0, skipped 4"
    reasons = {}
    for line in err.splitlines():
        if line.startswith("skipped "):
            name, _, reason = line.removeprefix("skipped ").partition(": ")
            reasons[name] = reason
    assert sorted(reasons) == sorted(f"cut.{EXTENSIONS[fmt]}" for fmt in CUT_FORMATS)
    for fmt in CUT_FORMATS:
        assert reasons[f"cut.{EXTENSIONS[fmt]}"].startswith(f"truncated {fmt} image: its ")
