"""New operations on tiny arrays whose answers are known analytically."""

import re

import numpy as np
import pytest
from pydantic import BaseModel

from processor.errors import InvalidParameter
from processor.operations import get_operation

RAMP = np.arange(256, dtype=np.uint8).reshape(16, 16)


def run(name: str, image: np.ndarray, **values: object) -> np.ndarray:
    op = get_operation(name)
    params: BaseModel = op.params.model_validate(values)
    return op(image, params)


def rgba(colour: int | tuple[int, int, int], alpha: np.ndarray) -> np.ndarray:
    out = np.zeros((*alpha.shape, 4), np.uint8)
    out[:, :, :3] = colour
    out[:, :, 3] = alpha
    return out


ALPHA = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20


# --- tone curves ---------------------------------------------------------------------------


def test_invert_of_black_is_white_and_twice_is_identity() -> None:
    assert np.all(run("invert", np.zeros((2, 3), np.uint8)) == 255)
    assert np.array_equal(run("invert", RAMP), 255 - RAMP)
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(run("invert", run("invert", image)), image)


def test_invert_keeps_alpha() -> None:
    out = run("invert", rgba((10, 20, 30), ALPHA))
    assert np.all(out[:, :, :3] == [245, 235, 225])
    assert np.array_equal(out[:, :, 3], ALPHA)
    la = run("invert", np.dstack([np.full((3, 4), 55, np.uint8), ALPHA]))
    assert np.all(la[:, :, 0] == 200)
    assert np.array_equal(la[:, :, 1], ALPHA)


def test_brightness_adds_and_saturates() -> None:
    out = run("brightness", RAMP, offset=100).astype(int)
    assert np.array_equal(out, np.minimum(RAMP.astype(int) + 100, 255))
    assert run("brightness", RAMP, offset=100).max() == 255
    assert run("brightness", RAMP, offset=-300 + 45).min() == 0
    assert np.array_equal(run("brightness", RAMP, offset=0), RAMP)
    out_rgba = run("brightness", rgba(250, ALPHA), offset=10)
    assert np.all(out_rgba[:, :, :3] == 255)
    assert np.array_equal(out_rgba[:, :, 3], ALPHA)


def test_contrast_factor_one_is_identity_zero_is_mid_grey() -> None:
    assert np.array_equal(run("contrast", RAMP, factor=1), RAMP)
    assert np.all(run("contrast", RAMP, factor=0) == 128)
    doubled = run("contrast", RAMP, factor=2).astype(int)
    assert doubled[8, 0] == 128  # the pivot stays
    assert doubled.ravel()[100] == 128 + 2 * (100 - 128)
    assert doubled.ravel()[10] == 0 and doubled.ravel()[250] == 255
    # Half up: 128 + 0.5 * (129 - 128) = 128.5 -> 129.
    assert run("contrast", RAMP, factor=0.5).ravel()[129] == 129


def test_threshold_of_a_ramp_splits_at_the_level() -> None:
    out = run("threshold", RAMP, level=100).ravel()
    assert np.all(out[:100] == 0)
    assert np.all(out[100:] == 255)
    assert np.all(run("threshold", RAMP, level=0) == 255)


def test_threshold_makes_colour_grey_and_keeps_alpha() -> None:
    image = rgba((200, 200, 200), ALPHA)
    image[0, 0, :3] = (10, 10, 10)
    out = run("threshold", image, level=128)
    assert out.shape == (3, 4, 2)
    assert out[0, 0, 0] == 0
    assert np.all(out[:, :, 0].ravel()[1:] == 255)
    assert np.array_equal(out[:, :, 1], ALPHA)
    assert run("threshold", np.full((2, 2, 3), 128, np.uint8)).shape == (2, 2)


def test_equalize_of_a_two_level_image_spans_black_to_white() -> None:
    image = np.full((4, 6), 90, np.uint8)
    image[:, 3:] = 140
    out = run("equalize", image)
    assert np.all(out[:, :3] == 0)
    assert np.all(out[:, 3:] == 255)
    assert np.array_equal(run("equalize", np.full((3, 3), 77, np.uint8)), np.full((3, 3), 77))


def test_equalize_colour_works_on_luma_and_keeps_alpha_and_grey() -> None:
    image = rgba((90, 90, 90), ALPHA)
    image[:, 2:, :3] = 140
    out = run("equalize", image)
    assert np.array_equal(out[:, :, 3], ALPHA)
    # Grey stays grey (Cr = Cb = 128), now at both ends of the range.
    assert np.all(np.abs(out[:, :2, :3].astype(int) - 0) <= 1)
    assert np.all(np.abs(out[:, 2:, :3].astype(int) - 255) <= 1)


# --- filters -------------------------------------------------------------------------------


def test_median_removes_a_single_salt_pixel() -> None:
    image = np.full((9, 9, 3), 40, np.uint8)
    image[4, 4] = 255
    assert np.all(run("median", image, size=3) == 40)
    la = np.dstack([image[:, :, 0], np.full((9, 9), 200, np.uint8)])
    out = run("median", la, size=7)  # 2 channels, large window: split path
    assert np.all(out[:, :, 0] == 40) and np.all(out[:, :, 1] == 200)


def test_median_keeps_a_straight_edge() -> None:
    step = np.zeros((8, 8), np.uint8)
    step[:, 4:] = 200
    assert np.array_equal(run("median", step, size=5), step)


def test_sharpen_amount_zero_is_identity_and_constant_stays() -> None:
    image = np.random.default_rng(1).integers(0, 256, (12, 13, 3), dtype=np.uint8)
    assert np.array_equal(run("sharpen", image, amount=0), image)
    assert np.all(run("sharpen", np.full((9, 9), 99, np.uint8), amount=5) == 99)


def test_sharpen_overshoots_at_an_edge_and_keeps_alpha() -> None:
    step = np.full((11, 12), 100, np.uint8)
    step[:, 6:] = 150
    out = run("sharpen", step, amount=2, sigma=1).astype(int)
    assert out[5, 5] < 100 and out[5, 6] > 150  # the dark side darkens, the bright side brightens
    assert out[5, 0] == 100 and out[5, 11] == 150
    image = rgba(100, np.full((3, 4), 7, np.uint8))
    assert np.all(run("sharpen", image)[:, :, 3] == 7)


@pytest.mark.parametrize("method", ["butterworth", "ideal"])
@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 2), (20, 30, 3), (20, 30, 4)])
def test_frequency_low_pass_keeps_a_constant_image(method: str, shape: tuple[int, ...]) -> None:
    out = run("low_pass", np.full(shape, 201, np.uint8), method=method, cutoff=0.2)
    assert out.shape == shape
    assert np.all(out == 201)


def cosine(frequency: float, width: int = 256) -> np.ndarray:
    """A horizontal cosine of ``frequency`` cycles per pixel, amplitude 100 about 128."""
    x = np.arange(width)
    return np.tile(np.rint(128 + 100 * np.cos(2 * np.pi * frequency * x)), (64, 1)).astype(np.uint8)


def amplitude(image: np.ndarray) -> float:
    inner = image[16:-16, 32:-32].astype(float)
    return float((inner.max() - inner.min()) / 2)


def test_ideal_low_pass_keeps_low_and_removes_high_frequencies() -> None:
    # 0.05 cycles/px is 0.1 of Nyquist; 0.4 cycles/px is 0.8 of Nyquist.
    low = run("low_pass", cosine(0.05), method="ideal", cutoff=0.5)
    assert abs(amplitude(low) - 100) <= 3
    high = run("low_pass", cosine(0.4), method="ideal", cutoff=0.5)
    assert amplitude(high) <= 3
    assert abs(float(high[16:-16, 32:-32].mean()) - 128) <= 1


def test_butterworth_halves_the_amplitude_at_its_cutoff() -> None:
    out = run("low_pass", cosine(0.125), method="butterworth", cutoff=0.25, order=2)
    assert abs(amplitude(out) - 50) <= 3
    sharper = run("low_pass", cosine(0.2), method="butterworth", cutoff=0.25, order=8)
    assert amplitude(sharper) < 5


def test_edges_of_a_step_and_of_flat_areas() -> None:
    step = np.zeros((6, 8), np.uint8)
    step[:, 4:] = 100
    out = run("edges", step)
    # Sobel across a step of 100 gives 400 on the two columns beside it: 400 / 4 = 100.
    assert np.all(out[:, 3:5] == 100)
    assert np.all(out[:, :2] == 0) and np.all(out[:, 6:] == 0)
    ramp = np.tile((np.arange(9) * 5).astype(np.uint8), (6, 1))
    assert np.all(run("edges", ramp)[:, 1:-1] == 10)  # 2k for a ramp of k = 5
    assert get_operation("edges").output == "graphic"


# --- geometry ------------------------------------------------------------------------------


def test_flip_matches_np_flip_and_twice_is_identity() -> None:
    image = np.random.default_rng(2).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    assert np.array_equal(run("flip", image, axis="horizontal"), image[:, ::-1])
    assert np.array_equal(run("flip", image, axis="vertical"), image[::-1])
    assert np.array_equal(run("flip", image, axis="both"), np.rot90(image, 2))
    for axis in ("horizontal", "vertical", "both"):
        assert np.array_equal(run("flip", run("flip", image, axis=axis), axis=axis), image)


def test_crop_equals_slicing() -> None:
    image = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = run("crop", image, x=4, y=2, width=10, height=7)
    assert np.array_equal(out, image[2:9, 4:14])
    assert out.flags.c_contiguous and not np.shares_memory(out, image)
    assert np.array_equal(run("crop", image, width=30, height=20), image)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (
            {"x": 25, "width": 10, "height": 1},
            "crop.width: x + width = 35 is beyond the image width 30",
        ),
        (
            {"y": 15, "width": 1, "height": 6},
            "crop.height: y + height = 21 is beyond the image height 20",
        ),
        ({"x": 30, "width": 1, "height": 1}, "crop.width"),
    ],
)
def test_crop_outside_the_image_is_refused(values: dict[str, int], fragment: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(fragment)):
        run("crop", np.zeros((20, 30), np.uint8), **values)


@pytest.mark.parametrize(
    ("fill", "shape", "expected"),
    [
        ("white", (10, 20, 3), [255, 255, 255]),
        ("#ff8000", (10, 20, 3), [255, 128, 0]),
        ("ff800080", (10, 20, 4), [255, 128, 0, 128]),
        ("transparent", (10, 20, 4), [0, 0, 0, 0]),
        ("transparent", (10, 20, 3), [0, 0, 0]),
        ("black", (10, 20, 2), [0, 255]),
        ("#ff8000", (10, 20), 151),  # BT.601 luma of the colour
    ],
)
def test_rotate_fills_corners_with_the_fill_colour(
    fill: str, shape: tuple[int, ...], expected: object
) -> None:
    out = run("rotate", np.full(shape, 60, np.uint8), degrees=45, fill=fill)
    corner = out[0, 0].tolist() if out.ndim == 3 else int(out[0, 0])
    assert corner == expected
    centre = np.atleast_1d(out[out.shape[0] // 2, out.shape[1] // 2])
    assert np.all(centre[: 3 if len(shape) == 3 and shape[2] >= 3 else 1] == 60)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
def test_rotate_interpolations_keep_a_constant_interior(interpolation: str) -> None:
    out = run("rotate", np.full((30, 40), 90, np.uint8), degrees=20, interpolation=interpolation)
    assert np.all(out[out.shape[0] // 2 - 5 : out.shape[0] // 2 + 5, 15:-15] == 90)


def test_nearest_rotation_only_uses_source_values() -> None:
    image = np.random.default_rng(4).integers(1, 5, (21, 21), dtype=np.uint8) * 50
    out = run("rotate", image, degrees=33, interpolation="nearest", fill="black")
    assert set(np.unique(out)) <= {0, 50, 100, 150, 200}
