"""Every operation against its plain numpy/scipy oracle, on sample photos and synthetic arrays.

Tolerances are in grey levels (max absolute difference) and stated per case:
0 where both sides do exact integer arithmetic, 1 where OpenCV's fixed-point
arithmetic or float32 rounding may land on the other side of a half.
"""

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from processor.codec import decode
from processor.operations import get_operation
from processor.operations.geometry import fill_value
from tests.processor import oracles

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@cache
def sample(name: str) -> np.ndarray:
    return decode((SAMPLES / name).read_bytes(), max_pixels=50_000_000).pixels


def with_alpha(image: np.ndarray) -> np.ndarray:
    """Add a diagonal alpha ramp, so alpha differs from every colour channel."""
    height, width = image.shape[:2]
    alpha = ((np.add.outer(np.arange(height), np.arange(width)) * 255) // (height + width)).astype(
        np.uint8
    )
    planes = image if image.ndim == 3 else image[:, :, np.newaxis]
    return np.ascontiguousarray(np.dstack([planes, alpha]))


IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut RGB": lambda: sample("astronaut.png"),
    "camera L": lambda: sample("camera.png"),
    "chelsea RGBA": lambda: with_alpha(sample("chelsea.png")),
    "camera LA": lambda: with_alpha(sample("camera.png")[:200, :300]),
    "noise RGB": lambda: np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8),
}


def run(name: str, image: np.ndarray, **values: object) -> np.ndarray:
    op = get_operation(name)
    params: BaseModel = op.params.model_validate(values)
    out = op(image, params)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    return out


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: int) -> None:
    assert actual.shape == expected.shape
    difference = np.abs(actual.astype(int) - expected.astype(int))
    assert difference.max() <= tolerance, f"max diff {difference.max()} > {tolerance}"


# (operation, params, oracle, tolerance)
CASES: list[tuple[str, dict[str, object], Callable[[np.ndarray], np.ndarray], int]] = [
    ("grayscale", {}, oracles.grayscale, 1),
    ("invert", {}, oracles.invert, 0),
    ("brightness", {"offset": 40}, lambda i: oracles.brightness(i, 40), 0),
    ("brightness", {"offset": -90}, lambda i: oracles.brightness(i, -90), 0),
    ("contrast", {"factor": 1.7}, lambda i: oracles.contrast(i, 1.7), 0),
    ("contrast", {"factor": 0.3}, lambda i: oracles.contrast(i, 0.3), 0),
    # RGB -> YCrCb -> RGB in OpenCV's fixed point, each step within 1 of the float oracle.
    ("equalize", {}, oracles.equalize, 3),
    ("low_pass", {"sigma": 1.5}, lambda i: oracles.gaussian(i, 1.5), 1),
    ("low_pass", {"sigma": 4}, lambda i: oracles.gaussian(i, 4), 1),
    (
        "low_pass",
        {"method": "butterworth", "cutoff": 0.3, "order": 3},
        lambda i: oracles.frequency_low_pass(i, "butterworth", 0.3, 3),
        1,
    ),
    (
        "low_pass",
        {"method": "ideal", "cutoff": 0.4},
        lambda i: oracles.frequency_low_pass(i, "ideal", 0.4),
        1,
    ),
    # The oracle rounds its blur like OpenCV's (±1), then amount multiplies that difference.
    ("sharpen", {"amount": 1, "sigma": 2}, lambda i: oracles.sharpen(i, 1, 2), 2),
    ("median", {"size": 3}, lambda i: oracles.median(i, 3), 0),
    ("median", {"size": 7}, lambda i: oracles.median(i, 7), 0),
    ("gradient_x", {}, lambda i: oracles.gradient(i, 1, "signed"), 0),
    ("gradient_y", {"mode": "abs"}, lambda i: oracles.gradient(i, 0, "abs"), 0),
    ("edges", {}, oracles.edges, 1),
    ("flip", {"axis": "horizontal"}, lambda i: oracles.flip(i, "horizontal"), 0),
    ("flip", {"axis": "both"}, lambda i: oracles.flip(i, "both"), 0),
    (
        "crop",
        {"x": 5, "y": 3, "width": 20, "height": 30},
        lambda i: oracles.crop(i, 5, 3, 20, 30),
        0,
    ),
]


@pytest.mark.parametrize("image_name", sorted(IMAGES))
@pytest.mark.parametrize(
    ("name", "values", "oracle", "tolerance"),
    CASES,
    ids=[f"{name}-{'-'.join(map(str, values.values()))}" for name, values, _, _ in CASES],
)
def test_matches_oracle(
    image_name: str,
    name: str,
    values: dict[str, object],
    oracle: Callable[[np.ndarray], np.ndarray],
    tolerance: int,
) -> None:
    image = IMAGES[image_name]()
    assert_close(run(name, image, **values), oracle(image), tolerance)


def test_threshold_matches_oracle_except_where_luma_rounds_across_the_level() -> None:
    image = sample("astronaut.png")
    out = run("threshold", image, level=100)
    expected = oracles.threshold(image, 100)
    exact_luma = oracles.luma(image)
    near_level = np.abs(exact_luma - 100) <= 1
    assert np.array_equal(out[~near_level], expected[~near_level])
    assert set(np.unique(out)) == {0, 255}


@pytest.mark.parametrize("image_name", ["astronaut RGB", "camera L", "chelsea RGBA"])
@pytest.mark.parametrize("degrees", [30, -17.5, 135])
def test_rotate_matches_bilinear_oracle_inside(image_name: str, degrees: float) -> None:
    """Inside the source, OpenCV's 1/32-pixel fixed-point coordinates stay within 2 levels."""
    image = IMAGES[image_name]()
    out = run("rotate", image, degrees=degrees, fill="ff8000")
    channels = 1 if image.ndim == 2 else image.shape[2]
    expected, inside = oracles.rotate(
        image, degrees, (out.shape[1], out.shape[0]), fill_value("ff8000", channels)
    )
    assert out.shape == expected.shape
    difference = np.abs(out.astype(int) - expected.astype(int))
    assert difference[inside].max() <= 2
    assert difference[inside].mean() < 0.3
    # Far outside the source, every pixel is exactly the fill colour.
    corner = out[0, 0] if out.ndim == 2 else out[0, 0].tolist()
    assert corner == (
        fill_value("ff8000", channels)[0] if out.ndim == 2 else list(fill_value("ff8000", channels))
    )


@pytest.mark.parametrize("image_name", sorted(IMAGES))
@pytest.mark.parametrize(("fx", "fy"), [(0.5, 0.5), (0.37, 0.21), (0.9, 0.6), (0.05, 0.08)])
def test_shrinking_resize_is_area_averaging(image_name: str, fx: float, fy: float) -> None:
    image = IMAGES[image_name]()
    width, height = max(1, round(image.shape[1] * fx)), max(1, round(image.shape[0] * fy))
    out = run("resize", image, width=width, height=height, fit="fill")
    assert_close(out, oracles.resize_area(image, width, height), 1)


@pytest.mark.parametrize(("width", "height"), [(101, 70), (160, 90)])
def test_enlarging_resize_is_bilinear(width: int, height: int) -> None:
    image = np.random.default_rng(8).integers(0, 256, (31, 43, 3), dtype=np.uint8)
    out = run("resize", image, width=width, height=height, fit="fill")
    assert_close(out, oracles.resize_linear(image, width, height), 1)
