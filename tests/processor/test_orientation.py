"""Orientation is applied exactly once, whichever format carries it and whichever decoder reads it.

Some decoders turn the image upright themselves (Pillow's TIFF plugin, pillow-heif),
others hand over the pixels as stored; ``tests.imaging.oriented`` stores the same
upright picture under each orientation, so every path must give that picture back.
"""

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from processor.codec import decode, open_image, probe
from tests.imaging import (
    EXIF_ORIENTATION,
    LOSSLESS,
    ORIENTABLE,
    TOLERANCE,
    difference,
    encoded,
    oriented,
    stored_pixels,
    upright_picture,
)
from tests.processor.crafted import with_png_exif
from tests.processor.test_api import make_client

MAX = 50_000_000
ORIENTATIONS = range(1, 9)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def assert_upright(pixels: np.ndarray, fmt: str, expected: np.ndarray | None = None) -> None:
    """``pixels`` are the upright picture: exactly for lossless formats, closely otherwise."""
    picture = upright_picture() if expected is None else expected
    assert pixels.shape == picture.shape
    if fmt in LOSSLESS:
        assert np.array_equal(pixels, picture)
    else:
        assert difference(pixels, picture) <= TOLERANCE


def orientation_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_decode_turns_every_format_upright_once(fmt: str, orientation: int) -> None:
    decoded = decode(oriented(fmt, orientation), max_pixels=MAX)
    assert decoded.format == fmt
    assert_upright(decoded.pixels, fmt)
    assert decoded.size == (48, 32)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_process_returns_every_format_upright(
    client: TestClient, fmt: str, orientation: int
) -> None:
    response = client.post(
        "/v1/process", params={"format": "png"}, content=oriented(fmt, orientation)
    )
    assert response.status_code == 200, response.text
    assert (response.headers["x-image-width"], response.headers["x-image-height"]) == ("48", "32")
    with Image.open(io.BytesIO(response.content)) as result:
        assert result.getexif().get(EXIF_ORIENTATION) is None  # nothing left to turn
        assert_upright(np.asarray(result), fmt)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_info_reports_the_upright_size_and_the_orientation_carried(
    client: TestClient, fmt: str, orientation: int
) -> None:
    info = client.post("/v1/info", content=oriented(fmt, orientation)).json()
    assert (info["format"], info["width"], info["height"]) == (fmt, 48, 32)
    assert info["exif_orientation"] == orientation


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_a_sideways_tiff_is_not_turned_or_swapped_twice(orientation: int) -> None:
    # Pillow's TIFF plugin reports the upright size from the header and turns the
    # pixels on load, while its EXIF still says the orientation until then.
    data = oriented("tiff", orientation)
    source = open_image(data, max_pixels=MAX)
    assert (source.orientation, source.size) == (orientation, (48, 32))
    assert source.decoded_size() == (48, 32)
    assert_upright(source.decode().pixels, "tiff")


def test_heic_reports_the_orientation_pillow_heif_already_applied() -> None:
    data = oriented("heic", 6)
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.getexif().get(EXIF_ORIENTATION) == 1  # pillow-heif reset it
        assert opened.info["original_orientation"] == 6
    assert probe(data).exif_orientation == 6


@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_exif_before_or_after_the_pixel_data(orientation: int, after_pixels: bool) -> None:
    png = encoded("png", stored_pixels(upright_picture(), orientation))
    data = with_png_exif(png, orientation_exif(orientation), after_pixels=after_pixels)
    info = probe(data)
    assert (info.exif_orientation, info.width, info.height) == (orientation, 48, 32)
    assert_upright(decode(data, max_pixels=MAX).pixels, "png")


def test_png_orientation_after_the_pixels_is_read_without_decoding_them() -> None:
    png = encoded("png", stored_pixels(upright_picture(), 6))
    start = png.index(b"IDAT") + 4
    broken = png[:start] + bytes(len(png) - 12 - start - 4) + png[-16:]  # zeroed pixel data
    data = with_png_exif(broken, orientation_exif(6), after_pixels=True)
    info = probe(data)  # a decode would fail on the zeroed data
    assert (info.exif_orientation, info.width, info.height) == (6, 48, 32)
    assert open_image(data, max_pixels=MAX).size == (48, 32)


def mpo(orientation: int, upright: np.ndarray) -> bytes:
    """A phone's multi-picture JPEG: the photo stored under ``orientation``, then a preview."""
    first = Image.fromarray(stored_pixels(upright, orientation))
    preview = Image.new("RGB", (16, 16), (0, 0, 0))
    buffer = io.BytesIO()
    first.save(
        buffer,
        "MPO",
        save_all=True,
        append_images=[preview],
        quality=95,
        exif=orientation_exif(orientation),
    )
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_mpo_orientation_at_full_and_reduced_scale(orientation: int) -> None:
    big = upright_picture(192, 128)
    data = mpo(orientation, big)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    source = open_image(data, max_pixels=MAX)
    assert (source.format, source.orientation, source.size) == ("jpeg", orientation, (192, 128))
    assert_upright(source.decode().pixels, "jpeg", big)
    small = source.decode(at_least=(24, 16))  # 1/8 scale in libjpeg
    assert small.reduced and small.size == (192, 128)
    assert_upright(small.pixels, "jpeg", upright_picture(24, 16))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_reduced_jpeg_decode_turns_upright_once(orientation: int) -> None:
    big = upright_picture(192, 128)
    data = oriented("jpeg", orientation, big)
    source = open_image(data, max_pixels=MAX)
    assert source.decoded_size((48, 32)) == (48, 32)
    small = source.decode(at_least=(48, 32))
    assert small.reduced and small.size == (192, 128)
    assert_upright(small.pixels, "jpeg", upright_picture(48, 32))
