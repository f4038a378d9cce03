"""Colour through the API: profiles honoured by default, kept and embedded on request."""

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import tests.colour_profiles as cp
from processor.config import Settings
from processor.main import create_app
from tests.processor.test_colour import (
    JPEG_TOLERANCE,
    SRGB_PATCHES,
    TOLERANCE,
    centres,
    delta_e,
    device_values,
    patches,
)

SIDE = 16
EXPECTED = np.array(list(SRGB_PATCHES.values()), np.uint8)
# Display P3 device values that show the sRGB patches.
P3_PIXELS = patches([device_values(tuple(c), "Display P3") for c in EXPECTED], SIDE)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(settings=Settings())) as test_client:
        yield test_client


def saved(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def opened(data: bytes) -> tuple[np.ndarray, bytes | None]:
    image = Image.open(io.BytesIO(data))
    return np.asarray(image.convert("RGB")), image.info.get("icc_profile")


P3_PNG = saved(P3_PIXELS, "PNG", icc_profile=cp.DISPLAY_P3)
P3_JPEG = saved(P3_PIXELS, "JPEG", quality=95, subsampling=0, icc_profile=cp.DISPLAY_P3)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "avif"])
def test_a_display_p3_photo_comes_out_in_srgb_untagged(client: TestClient, fmt: str) -> None:
    response = client.post("/v1/process", params={"format": fmt, "quality": 100}, content=P3_PNG)
    assert response.status_code == 200, response.text
    pixels, profile = opened(response.content)
    assert profile is None
    tolerance = TOLERANCE if fmt == "png" else 3 * JPEG_TOLERANCE
    assert delta_e(centres(pixels, len(EXPECTED), SIDE), EXPECTED).max() <= tolerance


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "avif"])
def test_colour_keep_keeps_the_pixels_and_embeds_the_profile(client: TestClient, fmt: str) -> None:
    params = {"format": fmt, "quality": 100, "colour": "keep"}
    response = client.post("/v1/process", params=params, content=P3_PNG)
    assert response.status_code == 200, response.text
    pixels, profile = opened(response.content)
    assert profile == cp.DISPLAY_P3
    stored = centres(pixels, len(EXPECTED), SIDE).astype(int)
    assert np.abs(stored - centres(P3_PIXELS, len(EXPECTED), SIDE)).max() <= (
        0 if fmt == "png" else 6
    )


def test_a_kept_profile_in_jpeg_is_what_pillow_would_write(client: TestClient) -> None:
    params = {"format": "jpeg", "quality": 90, "colour": "keep"}
    ours = client.post("/v1/process", params=params, content=P3_PNG).content
    pillows = saved(P3_PIXELS, "JPEG", quality=90, icc_profile=cp.DISPLAY_P3)
    assert ours == pillows


def test_a_kept_rgb_profile_is_dropped_once_the_picture_is_grey(client: TestClient) -> None:
    params = {"ops": "grayscale", "format": "png", "colour": "keep"}
    response = client.post("/v1/process", params=params, content=P3_PNG)
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "L"
    assert "icc_profile" not in image.info


def test_a_jpeg_thumbnail_is_converted_at_its_reduced_size(client: TestClient) -> None:
    big = np.ascontiguousarray(np.repeat(np.repeat(P3_PIXELS, 8, axis=0), 8, axis=1))
    data = saved(big, "JPEG", quality=95, subsampling=0, icc_profile=cp.DISPLAY_P3)
    response = client.post("/v1/process", params={"ops": "resize:width=96"}, content=data)
    pixels, _ = opened(response.content)
    assert delta_e(centres(pixels, len(EXPECTED), SIDE), EXPECTED).max() <= 3 * JPEG_TOLERANCE


def test_cmyk_jpegs_come_out_right(client: TestClient) -> None:
    inks = {  # CMYK ink (0 = none) and the sRGB an ideal-ink model prints
        (255, 0, 0, 0): (0, 255, 255),
        (0, 255, 0, 0): (255, 0, 255),
        (0, 0, 255, 0): (255, 255, 0),
        (0, 0, 0, 255): (0, 0, 0),
        (0, 0, 0, 0): (255, 255, 255),
    }
    cmyk = patches([np.array(ink, np.uint8) for ink in inks], SIDE)
    buffer = io.BytesIO()
    Image.frombytes("CMYK", cmyk.shape[1::-1], cmyk.tobytes()).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    response = client.post("/v1/process", params={"format": "png"}, content=data)
    pixels, _ = opened(response.content)
    found = centres(pixels, len(inks), SIDE).astype(int)
    assert np.abs(found - np.array(list(inks.values()))).max() <= 4


def test_info_names_the_profile(client: TestClient) -> None:
    info = client.post("/v1/info", content=P3_JPEG).json()
    assert info["icc_profile"] == "Display P3"
    assert info["colour_space"] == "RGB"


def test_an_unknown_colour_policy_is_refused_naming_it(client: TestClient) -> None:
    response = client.post("/v1/process", params={"colour": "cmyk"}, content=P3_PNG)
    assert response.status_code == 422
    assert "colour" in response.json()["error"]["message"]


def test_a_corrupt_profile_leaves_the_pixels_as_stored(client: TestClient) -> None:
    broken = saved(P3_PIXELS, "PNG", icc_profile=cp.DISPLAY_P3[:200])
    response = client.post("/v1/process", params={"format": "png"}, content=broken)
    assert response.status_code == 200
    pixels, _ = opened(response.content)
    assert np.array_equal(pixels, P3_PIXELS)
