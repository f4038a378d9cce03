"""16-bit images reach 8 bits by rounding, round(v * 255 / 65535), not by keeping the high byte.

The values where the two differ show which one ran: 255 rounds to 1 (the high byte
is 0), 65280 rounds to 254 (the high byte is 255), 383 rounds to 1 (high byte 1)
and 32895 rounds to 128 (high byte 128: the same).
"""

import io
from collections.abc import Iterator
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from processor.codec import decode, probe
from tests.imaging import stored_pixels, upright_picture
from tests.processor.crafted import png16, tiff16, with_png_exif
from tests.processor.test_api import make_client

MAX = 50_000_000
ORIENTATIONS = range(1, 9)
WIDE = np.array([0, 255, 383, 32_895, 65_280, 65_535], np.uint16)
ROUNDED = [0, 1, 1, 128, 254, 255]
TRUNCATED = [0, 0, 1, 128, 255, 255]


@cache
def reference_table() -> np.ndarray:
    """Each 16-bit value times 255/65535, rounded, in exact arithmetic."""
    return np.asarray([round(Fraction(v * 255, 65_535)) for v in range(65_536)], np.uint8)


def rounded(values: np.ndarray) -> np.ndarray:
    """The reference reduction of ``values`` to 8 bits."""
    table: np.ndarray = reference_table()[values]
    return table


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def wide_picture(channels: int) -> np.ndarray:
    """The upright picture in 16 bits, off by 255 from v * 257 so truncation would show."""
    picture = upright_picture().astype(np.uint16) * 257
    picture = np.where(picture >= 255, picture - 255, picture).astype(np.uint16)
    if channels == 4:
        alpha = np.full(picture.shape[:2], 40_000, np.uint16)
        picture = np.dstack([picture, alpha])
    return picture


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def test_the_values_tell_rounding_from_truncation() -> None:
    assert rounded(WIDE).tolist() == ROUNDED
    assert (WIDE >> 8).tolist() == TRUNCATED


def test_every_16_bit_grey_value_is_rounded() -> None:
    every = np.arange(65_536, dtype=np.uint16).reshape(256, 256)
    for data in (save(Image.fromarray(every), "PNG"), save(Image.fromarray(every), "TIFF")):
        assert probe(data).bit_depth == 16
        pixels = decode(data, max_pixels=MAX).pixels
        assert pixels.dtype == np.uint8
        assert np.array_equal(pixels, rounded(every))


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_is_rounded_in_rgb_order(channels: int) -> None:
    values = np.stack([WIDE, WIDE[::-1], np.full(6, 383, np.uint16)], axis=-1)[None]
    if channels == 4:
        values = np.dstack([values, WIDE[None, :, None]])
    data = png16(values)
    with Image.open(io.BytesIO(data)) as opened:  # what Pillow alone would give
        assert np.asarray(opened)[0, :, 0].tolist() == TRUNCATED
    info = probe(data)
    assert (info.bit_depth, info.colour_space) == (16, "RGB")
    pixels = decode(data, max_pixels=MAX).pixels
    assert pixels.shape == (1, 6, channels)
    assert np.array_equal(pixels, rounded(values))


def test_16_bit_grey_alpha_png_stays_grey_with_alpha() -> None:
    values = np.stack([WIDE, WIDE[::-1]], axis=-1)[None]
    pixels = decode(png16(values), max_pixels=MAX).pixels
    assert pixels.shape == (1, 6, 2)
    assert np.array_equal(pixels, rounded(values))


def test_16_bit_png_transparent_colour_becomes_alpha() -> None:
    values = np.array([[[255, 383, 65_280], [1, 2, 3]]], np.uint16)
    pixels = decode(png16(values, trns=(255, 383, 65_280)), max_pixels=MAX).pixels
    assert pixels.tolist() == [[[1, 1, 254, 0], [0, 0, 0, 255]]]


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_16_bit_tiff_is_rounded_and_turned_upright_once(channels: int, orientation: int) -> None:
    upright = wide_picture(channels)
    data = tiff16(stored_pixels(upright, orientation), orientation=orientation)
    info = probe(data)
    assert (info.bit_depth, info.exif_orientation, info.width, info.height) == (
        16,
        orientation,
        48,
        32,
    )
    pixels = decode(data, max_pixels=MAX).pixels
    assert np.array_equal(pixels, rounded(upright))


@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_16_bit_png_is_turned_upright_once(orientation: int, after_pixels: bool) -> None:
    upright = wide_picture(3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = png16(stored_pixels(upright, orientation))
    data = with_png_exif(png, exif.tobytes(), after_pixels=after_pixels)
    assert np.array_equal(decode(data, max_pixels=MAX).pixels, rounded(upright))


def test_16_bit_grey_tiff_turned_by_pillow_is_rounded() -> None:
    upright = wide_picture(3)[:, :, 0]
    data = save(Image.fromarray(stored_pixels(upright, 6)), "TIFF", tiffinfo={0x0112: 6})
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    assert np.array_equal(decode(data, max_pixels=MAX).pixels, rounded(upright))


def test_a_16_bit_png_through_the_route_is_rounded(client: TestClient) -> None:
    values = np.stack([WIDE, WIDE, WIDE], axis=-1)[None]
    response = client.post("/v1/process", params={"format": "png"}, content=png16(values))
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as result:
        assert np.asarray(result)[0, :, 0].tolist() == ROUNDED
