"""The formats phones and cameras write: AVIF and HEIC in, AVIF out, MPO, animations."""

import io
from collections.abc import Iterator
from typing import get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, MpoImagePlugin

from processor.codec import (
    MEDIA_TYPES,
    OUTPUT_FORMATS,
    _decode_jpeg_with_opencv,
    decode,
    default_output_format,
    encode,
    open_image,
    probe,
)
from processor.errors import InvalidParameter
from processor.routes import OutputFormat
from tests.imaging import TOLERANCE, difference, encoded, upright_picture
from tests.processor.test_api import make_client

MAX = 50_000_000
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def animated(fmt: str, colours: list[tuple[int, int, int]]) -> bytes:
    frames = [Image.new("RGB", (8, 6), colour) for colour in colours]
    options = {"lossless": True} if fmt == "WEBP" else {}
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


def multi_picture_jpeg() -> bytes:
    """A phone's JPEG: the photo, then a second picture (Pillow opens it as MPO)."""
    photo = Image.fromarray(upright_picture(96, 64))
    buffer = io.BytesIO()
    photo.save(buffer, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 8))], quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["avif", "heic"])
def test_avif_and_heic_are_read(fmt: str) -> None:
    data = encoded(fmt, upright_picture())
    info = probe(data)
    assert (info.format, info.width, info.height, info.frames) == (fmt, 48, 32, 1)
    decoded = decode(data, max_pixels=MAX)
    assert decoded.format == fmt
    assert difference(decoded.pixels, upright_picture()) <= TOLERANCE
    assert MEDIA_TYPES[fmt] == f"image/{fmt}"


@pytest.mark.parametrize("fmt", ["avif", "heic"])
def test_the_mif1_brand_both_plugins_accept_opens_as_what_it_holds(fmt: str) -> None:
    data = encoded(fmt, upright_picture())
    assert data[4:8] == b"ftyp"
    rebranded = data[:8] + b"mif1" + data[12:]
    assert probe(rebranded).format == fmt
    assert decode(rebranded, max_pixels=MAX).pixels.shape == (32, 48, 3)


def test_a_multi_picture_jpeg_is_a_jpeg_decoded_by_opencv() -> None:
    data = multi_picture_jpeg()
    with Image.open(io.BytesIO(data)) as opened:
        assert isinstance(opened, MpoImagePlugin.MpoImageFile)
        assert opened.n_frames == 2
        assert _decode_jpeg_with_opencv(data, opened, None) is not None  # the fast path ran
        expected = np.asarray(opened.convert("RGB"))  # the first picture
    info = probe(data)
    assert (info.format, info.width, info.height, info.frames) == ("jpeg", 96, 64, 1)
    decoded = decode(data, max_pixels=MAX)
    assert decoded.format == "jpeg"
    assert np.array_equal(decoded.pixels, expected)


def test_a_multi_picture_jpeg_shrinks_on_load_like_pillows_draft() -> None:
    data = multi_picture_jpeg()
    reduced = open_image(data, max_pixels=MAX).decode(at_least=(24, 16))
    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (24, 16))
        expected = np.asarray(opened.convert("RGB"))
    assert reduced.pixels.shape == (16, 24, 3)
    assert np.array_equal(reduced.pixels, expected)


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png"), ("AVIF", "avif")]
)
def test_animations_give_their_first_frame_and_count_them(fmt: str, name: str) -> None:
    data = animated(fmt, [RED, GREEN, BLUE])
    info = probe(data)
    assert (info.format, info.frames) == (name, 3)
    pixels = decode(data, max_pixels=MAX).pixels
    assert pixels.shape == (6, 8, 3)
    assert np.abs(pixels.astype(int) - RED).max() <= 4  # AVIF's chroma rounding


def test_avif_round_trip_keeps_alpha_grey_and_quality() -> None:
    picture = upright_picture()
    data = encode(picture, "avif", quality=90)
    assert data[4:12] == b"ftypavif"
    assert difference(decode(data, max_pixels=MAX).pixels, picture) <= TOLERANCE
    rgba = np.dstack([picture, np.full((32, 48), 255, np.uint8)])
    rgba[:, :24, 3] = 0
    out = decode(encode(rgba, "avif", quality=90), max_pixels=MAX).pixels
    assert out.shape == (32, 48, 4)
    assert out[:, :20, 3].max() <= 2 and out[:, 28:, 3].min() >= 253
    grey = decode(encode(picture[:, :, 0].copy(), "avif", quality=90), max_pixels=MAX).pixels
    assert grey.shape == (32, 48)
    grey_alpha = encode(np.dstack([picture[:, :, 0], rgba[:, :, 3]]), "avif", quality=90)
    assert decode(grey_alpha, max_pixels=MAX).pixels.shape == (32, 48, 4)
    noisy = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(encode(noisy, "avif", quality=20)) < len(encode(noisy, "avif", quality=90))


def test_avif_refuses_sides_libavif_cannot_read_back() -> None:
    with pytest.raises(InvalidParameter, match="avif holds at most 32768 pixels per side"):
        encode(np.zeros((1, 32_769), np.uint8), "avif", quality=50)


def test_the_route_offers_every_output_format() -> None:
    assert get_args(OutputFormat) == OUTPUT_FORMATS
    assert MEDIA_TYPES["avif"] == "image/avif"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("jpeg", "jpeg"),
        ("png", "png"),
        ("webp", "webp"),
        ("avif", "avif"),
        ("heic", "jpeg"),  # HEIC cannot be written
        ("gif", "png"),
        ("tiff", "png"),
        ("bmp", "png"),
    ],
)
def test_default_output_is_the_input_s_where_it_can_be_written(
    client: TestClient, fmt: str, expected: str
) -> None:
    assert default_output_format(fmt) == expected
    response = client.post("/v1/process", content=encoded(fmt, upright_picture()))
    assert response.status_code == 200, response.text
    assert response.headers["x-image-format"] == expected
    assert response.headers["content-type"] == MEDIA_TYPES[expected]
    graphic = client.post(
        "/v1/process", params={"ops": "gradient_x"}, content=encoded(fmt, upright_picture())
    )
    assert graphic.headers["x-image-format"] == "png"


def test_process_writes_avif_on_request(client: TestClient) -> None:
    response = client.post(
        "/v1/process",
        params={"format": "avif", "quality": 60},
        content=encoded("heic", upright_picture()),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/avif"
    with Image.open(io.BytesIO(response.content)) as result:
        assert result.format == "AVIF"
        assert difference(np.asarray(result.convert("RGB")), upright_picture()) <= TOLERANCE
