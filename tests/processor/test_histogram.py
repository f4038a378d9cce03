"""POST /v1/histogram: per-channel level counts of a pipeline's result, through TestClient."""

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from processor.codec import decode
from processor.jobs import level_counts
from tests.processor.test_api import MAX, ROCKET, SAMPLES, assert_error, make_client
from tests.processor.test_codec import bomb_png


@pytest.fixture
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def histogram(client: TestClient, body: bytes, ops: str = "") -> dict[str, object]:
    response = client.post("/v1/histogram", params={"ops": ops}, content=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_counts_of_a_photo_sum_to_its_pixels_and_match_numpy(client: TestClient) -> None:
    result = histogram(client, ROCKET)
    assert (result["channels"], result["bins"], result["width"], result["height"]) == (
        ["r", "g", "b"],
        256,
        640,
        427,
    )
    counts = np.array(result["counts"])
    assert counts.shape == (3, 256)
    assert (counts.sum(axis=1) == 640 * 427).all()
    pixels = decode(ROCKET, max_pixels=MAX).pixels
    for channel in range(3):
        expected = np.bincount(pixels[:, :, channel].ravel(), minlength=256)
        assert (counts[channel] == expected).all()


def test_a_constant_image_fills_one_bin_per_channel(client: TestClient) -> None:
    result = histogram(client, png(Image.new("RGB", (7, 5), (200, 30, 90))))
    counts = np.array(result["counts"])
    for channel, level in enumerate((200, 30, 90)):
        assert np.flatnonzero(counts[channel]).tolist() == [level]
        assert counts[channel][level] == 35


def test_grey_images_and_grey_results_have_one_channel(client: TestClient) -> None:
    grey = histogram(client, (SAMPLES / "camera.png").read_bytes())
    made_grey = histogram(client, ROCKET, "grayscale")
    colour = histogram(client, ROCKET, "invert")
    assert grey["channels"] == ["l"] and made_grey["channels"] == ["l"]
    assert np.array(grey["counts"]).shape == (1, 256)
    assert np.array(made_grey["counts"]).sum() == 640 * 427
    assert colour["channels"] == ["r", "g", "b"]
    # Inverting mirrors each channel's counts: level v becomes 255 - v.
    original = np.array(histogram(client, ROCKET)["counts"])
    assert (np.array(colour["counts"]) == original[:, ::-1]).all()


def test_the_counts_are_of_the_pipeline_s_result(client: TestClient) -> None:
    turned = histogram(client, ROCKET, "rotate:degrees=90")
    small = histogram(client, ROCKET, "resize:width=100")
    assert (turned["width"], turned["height"]) == (427, 640)
    assert str(turned["pipeline"]).startswith("rotate:degrees=90")
    assert (small["width"], small["height"]) == (100, 67)
    assert (np.array(small["counts"]).sum(axis=1) == 100 * 67).all()


def test_alpha_is_not_counted(client: TestClient) -> None:
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[..., 0] = 10
    rgba[..., 3] = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    grey_alpha = np.dstack([np.full((3, 3), 77, np.uint8), np.zeros((3, 3), np.uint8)])
    colour = histogram(client, png(Image.fromarray(rgba, "RGBA")))
    grey = histogram(client, png(Image.fromarray(grey_alpha, "LA")))
    assert colour["channels"] == ["r", "g", "b"]
    assert np.array(colour["counts"])[0][10] == 24
    assert (grey["channels"], np.array(grey["counts"])[0][77]) == (["l"], 9)


def test_counts_stay_exact_beyond_float32_precision() -> None:
    # 4097 x 4097 pixels of one level: more than 2**24, where float32 counts stop growing.
    channels, counts = level_counts(np.full((4097, 4097), 3, dtype=np.uint8))
    assert channels == ("l",)
    assert counts[0][3] == 4097 * 4097


def test_errors_are_those_of_process(client: TestClient) -> None:
    assert_error(client.post("/v1/histogram", content=b"hello"), 415, "unreadable_image")
    assert_error(client.post("/v1/histogram", content=b""), 415, "unreadable_image")
    assert_error(client.post("/v1/histogram", content=bomb_png()), 413, "image_too_large")
    bad = client.post("/v1/histogram", params={"ops": "rotate:degrees=1000"}, content=ROCKET)
    assert_error(bad, 422, "invalid_parameter", "rotate.degrees")
    unknown = client.post("/v1/histogram", params={"ops": "sepia"}, content=ROCKET)
    assert_error(unknown, 404, "unknown_operation", "sepia")
    malformed = client.post("/v1/histogram", params={"ops": "a||b"}, content=ROCKET)
    assert_error(malformed, 400, "invalid_pipeline")
    _, small = make_client(max_body_bytes=1000, max_pixels=100_000)
    with small:
        assert_error(small.post("/v1/histogram", content=ROCKET), 413, "body_too_large")
    _, few_pixels = make_client(max_pixels=300_000)
    with few_pixels:
        turned = few_pixels.post(
            "/v1/histogram", params={"ops": "rotate:degrees=45"}, content=ROCKET
        )
        assert_error(turned, 413, "image_too_large", "rotate")


def test_keys_and_busy_slots_are_those_of_process() -> None:
    _, keyed = make_client(api_keys="histogram-key-0123")
    with keyed:
        assert_error(keyed.post("/v1/histogram", content=ROCKET), 401, "missing_key")
        wrong = keyed.post(
            "/v1/histogram", content=ROCKET, headers={"Authorization": "Bearer nope"}
        )
        assert_error(wrong, 403, "wrong_key")
        right = keyed.post(
            "/v1/histogram",
            content=ROCKET,
            headers={"Authorization": "Bearer histogram-key-0123"},
        )
        assert right.status_code == 200
    app, busy = make_client(max_jobs=1, queue_timeout_s=0.05)
    with busy:
        portal = busy.portal
        assert portal is not None
        portal.call(app.state.jobs.acquire)
        try:
            assert_error(busy.post("/v1/histogram", content=ROCKET), 429, "overloaded")
        finally:
            portal.call(app.state.jobs.release)
