"""Operations on tiny arrays whose answers are known analytically."""

import math

import numpy as np
import pytest
from pydantic import BaseModel

from processor.errors import InvalidParameter
from processor.operations import all_operations, get_operation
from processor.operations.filters import LowPassParams, low_pass
from processor.operations.geometry import ResizeParams, RotateParams, resize, rotate, square_crop
from processor.operations.gradients import GradientParams, gradient_x, gradient_y
from processor.operations.registry import NoParams, job_context
from processor.operations.tone import grayscale


def ramp_x(height: int = 6, width: int = 9, slope: int = 5) -> np.ndarray:
    """Return a horizontal ramp: value = slope * x."""
    return np.tile((np.arange(width) * slope).astype(np.uint8), (height, 1))


def params(model: type[BaseModel], **values: object) -> BaseModel:
    return model.model_validate(values)


def test_registry_lists_the_operations_sorted_with_docstring_summaries() -> None:
    names = [op.name for op in all_operations()]
    assert names == sorted(names)
    assert set(names) >= {
        "grayscale",
        "low_pass",
        "square_crop",
        "rotate",
        "resize",
        "gradient_x",
        "gradient_y",
    }
    op = get_operation("rotate")
    assert op.func is rotate
    assert op.params is RotateParams
    assert op.summary == "Rotate about the centre, counter-clockwise for positive degrees."
    assert get_operation("gradient_x").output == "graphic"
    assert get_operation("grayscale").output == "photo"


def test_summaries_are_plain_text_without_rst_literals() -> None:
    for op in all_operations():
        assert "`" not in op.summary, op.name
    brightness = get_operation("brightness")
    assert (
        brightness.summary == "Brighten or darken by adding offset levels to every colour sample."
    )
    assert get_operation("crop").summary == (
        "Cut out the width x height region whose top-left corner is (x, y)."
    )


def test_every_parameter_has_a_description() -> None:
    for op in all_operations():
        for name, field in op.params.model_fields.items():
            assert field.description, f"{op.name}.{name}"


# --- gradients -----------------------------------------------------------------------------


def test_gradient_x_of_horizontal_ramp_is_constant_slope_above_mid_grey() -> None:
    out = gradient_x(ramp_x(slope=5), GradientParams())
    assert out.dtype == np.uint8
    assert out.shape == (6, 9)
    assert np.all(out[:, 1:-1] == 128 + 5)
    # Replicated border: the edge columns see half the slope, 128 + 2.5 rounded half up.
    assert np.all(out[:, 0] == 131)
    assert np.all(out[:, -1] == 131)


def test_gradient_y_of_horizontal_ramp_is_mid_grey() -> None:
    out = gradient_y(ramp_x(slope=5), GradientParams())
    assert np.all(out == 128)


def test_vertical_ramp_reverses_the_roles() -> None:
    ramp_y = np.ascontiguousarray(ramp_x(height=9, width=6, slope=7).T)
    assert np.all(gradient_x(ramp_y, GradientParams()) == 128)
    out = gradient_y(ramp_y, GradientParams())
    assert np.all(out[1:-1, :] == 128 + 7)


def test_descending_ramp_is_below_mid_grey() -> None:
    ramp = np.ascontiguousarray(ramp_x(slope=5)[:, ::-1])
    out = gradient_x(ramp, GradientParams())
    assert np.all(out[:, 1:-1] == 128 - 5)


def test_abs_mode_is_magnitude_over_four() -> None:
    up = gradient_x(ramp_x(slope=5), GradientParams(mode="abs"))
    down = gradient_x(np.ascontiguousarray(ramp_x(slope=5)[:, ::-1]), GradientParams(mode="abs"))
    # Sobel of slope 5 is 8 * 5 = 40; 40 / 4 = 10.
    assert np.all(up[:, 1:-1] == 10)
    assert np.all(down[:, 1:-1] == 10)
    assert np.all(gradient_y(ramp_x(), GradientParams(mode="abs")) == 0)


def test_steep_edge_saturates() -> None:
    step = np.zeros((4, 6), np.uint8)
    step[:, 3:] = 255
    assert gradient_x(step, GradientParams()).max() == 255
    # The steepest fall, g = -1020, maps to 128 - 127.5 rounded half up = 1.
    assert gradient_x(step[:, ::-1].copy(), GradientParams()).min() == 1
    assert gradient_x(step, GradientParams(mode="abs")).max() == 255


def test_gradient_is_per_colour_channel_and_keeps_alpha() -> None:
    rgba = np.zeros((5, 8, 4), np.uint8)
    rgba[:, :, 0] = ramp_x(5, 8, slope=2)
    rgba[:, :, 1] = ramp_x(5, 8, slope=9)
    rgba[:, :, 2] = 77
    rgba[:, :, 3] = np.arange(40, dtype=np.uint8).reshape(5, 8)
    out = gradient_x(rgba, GradientParams())
    assert out.shape == (5, 8, 4)
    assert np.all(out[:, 1:-1, 0] == 130)
    assert np.all(out[:, 1:-1, 1] == 137)
    assert np.all(out[:, :, 2] == 128)
    assert np.array_equal(out[:, :, 3], rgba[:, :, 3])


def test_gradient_of_la_keeps_alpha() -> None:
    la = np.dstack([ramp_x(slope=3), np.full((6, 9), 200, np.uint8)])
    out = gradient_x(la, GradientParams())
    assert out.shape == (6, 9, 2)
    assert np.all(out[:, 1:-1, 0] == 131)
    assert np.all(out[:, :, 1] == 200)


# --- rotate --------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees", [90, -90, 180, 270, -270, 360, -360, 0])
@pytest.mark.parametrize("shape", [(5, 8), (5, 8, 3), (4, 7, 4)])
def test_rotate_by_right_angles_equals_rot90(degrees: int, shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(abs(degrees) + len(shape)).integers(0, 256, shape, dtype=np.uint8)
    out = rotate(image, RotateParams(degrees=degrees))
    expected = np.rot90(image, (degrees // 90) % 4)
    assert out.shape == expected.shape
    assert np.array_equal(out, expected)
    assert out.flags.c_contiguous


def test_rotate_90_is_counter_clockwise() -> None:
    image = np.array([[1, 2], [3, 4]], np.uint8)
    assert rotate(image, RotateParams(degrees=90)).tolist() == [[2, 4], [1, 3]]


def test_rotate_30_expand_canvas_holds_whole_image() -> None:
    image = np.full((40, 100, 3), 200, np.uint8)
    out = rotate(image, RotateParams(degrees=30))
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    assert out.shape == (math.ceil(100 * s + 40 * c), math.ceil(100 * c + 40 * s), 3)
    assert out.shape == (85, 107, 3)
    # Centre pixel is inside the image, the corners are outside (filled with 0).
    assert np.all(out[42, 53] == 200)
    assert np.all(out[0, 0] == 0)
    assert np.all(out[-1, -1] == 0)


def test_rotate_without_expand_keeps_size() -> None:
    image = np.full((40, 100), 9, np.uint8)
    assert rotate(image, RotateParams(degrees=30, expand=False)).shape == (40, 100)
    # A right angle on a non-square image without expand cannot be a transpose.
    assert rotate(image, RotateParams(degrees=90, expand=False)).shape == (40, 100)


def test_rotate_rgba_corners_are_transparent() -> None:
    image = np.full((30, 50, 4), 255, np.uint8)
    out = rotate(image, RotateParams(degrees=45))
    assert out.shape[2] == 4
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        assert corner[3] == 0
    centre = out[out.shape[0] // 2, out.shape[1] // 2]
    assert centre.tolist() == [255, 255, 255, 255]


def test_rotate_with_transparent_fill_adds_alpha_when_the_output_carries_it() -> None:
    image = np.full((40, 100, 3), 200, np.uint8)
    today = rotate(image, RotateParams(degrees=30))
    with job_context(output_alpha=True):
        out = rotate(image, RotateParams(degrees=30))
    assert out.shape == (85, 107, 4)
    # The colour is what it always was; only the alpha is new.
    assert np.array_equal(out[:, :, :3], today)
    for corner in (out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]):
        assert corner.tolist() == [0, 0, 0, 0]
    assert out[42, 53].tolist() == [200, 200, 200, 255]
    # Grey becomes grey + alpha.
    with job_context(output_alpha=True):
        grey = rotate(np.full((40, 100), 9, np.uint8), RotateParams(degrees=30))
    assert grey.shape == (85, 107, 2)
    assert grey[0, 0].tolist() == [0, 0]
    assert grey[42, 53].tolist() == [9, 255]


def test_rotate_fill_alpha_below_255_is_kept_in_the_new_alpha_channel() -> None:
    image = np.full((40, 100, 3), 200, np.uint8)
    with job_context(output_alpha=True):
        out = rotate(image, RotateParams(degrees=30, fill="00ff0080"))
    assert out[0, 0].tolist() == [0, 255, 0, 0x80]
    assert out[42, 53].tolist() == [200, 200, 200, 255]


@pytest.mark.parametrize(
    ("fill", "degrees", "carried"),
    [
        ("transparent", 30, False),  # JPEG output or called outside a job: as before
        ("black", 30, True),  # an opaque fill needs no alpha
        ("ff0000", 30, True),
        ("transparent", 90, True),  # an exact transpose uncovers nothing
    ],
)
def test_rotate_adds_no_alpha_unless_transparent_corners_can_be_kept(
    fill: str, degrees: int, carried: bool
) -> None:
    image = np.full((40, 100, 3), 200, np.uint8)
    with job_context(output_alpha=carried):
        out = rotate(image, RotateParams(degrees=degrees, fill=fill))
    assert out.shape[2] == 3
    assert np.array_equal(out, rotate(image, RotateParams(degrees=degrees, fill=fill)))


# --- square_crop ---------------------------------------------------------------------------


def test_square_crop_landscape_is_centred() -> None:
    image = np.random.default_rng(1).integers(0, 256, (427, 640, 3), dtype=np.uint8)
    out = square_crop(image, NoParams())
    assert out.shape == (427, 427, 3)
    assert np.array_equal(out, image[:, 106:533])
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, image)


def test_square_crop_portrait_is_centred() -> None:
    image = np.random.default_rng(2).integers(0, 256, (600, 512), dtype=np.uint8)
    out = square_crop(image, NoParams())
    assert out.shape == (512, 512)
    assert np.array_equal(out, image[44:556, :])


# --- grayscale -----------------------------------------------------------------------------


def test_grayscale_is_bt601_luma() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = grayscale(rgb, NoParams())
    r, g, b = (rgb[:, :, i].astype(float) for i in range(3))
    expected = np.round(0.299 * r + 0.587 * g + 0.114 * b)
    assert out.shape == (16, 16)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_grayscale_primaries() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert grayscale(rgb, NoParams()).tolist() == [[76, 150, 29, 255]]


def test_grayscale_rgba_becomes_la_keeping_alpha() -> None:
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[:, :, :3] = 100
    rgba[:, :, 3] = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = grayscale(rgba, NoParams())
    assert out.shape == (3, 4, 2)
    assert np.all(out[:, :, 0] == 100)
    assert np.array_equal(out[:, :, 1], rgba[:, :, 3])


def test_grayscale_leaves_grey_images_unchanged() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(grayscale(grey, NoParams()), grey)


# --- low_pass ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(9, 11), (9, 11, 2), (9, 11, 3), (9, 11, 4)])
def test_low_pass_keeps_a_constant_image_constant(shape: tuple[int, ...]) -> None:
    image = np.full(shape, 137, np.uint8)
    out = low_pass(image, LowPassParams(sigma=3))
    assert out.shape == shape
    assert np.all(out == 137)


def test_low_pass_of_impulse_is_symmetric_and_keeps_its_sum() -> None:
    image = np.zeros((41, 41), np.uint8)
    image[20, 20] = 255
    out = low_pass(image, LowPassParams(sigma=2)).astype(int)
    assert out[20, 20] == out.max()
    assert out[20, 20] < 255
    assert np.array_equal(out, out[::-1, :])
    assert np.array_equal(out, out[:, ::-1])
    assert np.array_equal(out, out.T)
    # Each output pixel is rounded, so the sum drifts by at most a fraction per touched pixel.
    assert abs(out.sum() - 255) <= 20


def test_low_pass_default_sigma_is_two() -> None:
    assert LowPassParams().sigma == 2.0


# --- resize --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"width": 50}, (30, 50)),
        ({"height": 30}, (30, 50)),
        ({"width": 200}, (120, 200)),
        ({"width": 50, "height": 50}, (30, 50)),
        ({"width": 50, "height": 50, "fit": "cover"}, (50, 50)),
        ({"width": 50, "height": 50, "fit": "fill"}, (50, 50)),
        ({"width": 10, "height": 40, "fit": "fill"}, (40, 10)),
        ({"width": 1}, (1, 1)),
    ],
)
def test_resize_shapes(values: dict[str, object], expected: tuple[int, int]) -> None:
    image = np.zeros((60, 100, 3), np.uint8)
    out = resize(image, ResizeParams.model_validate(values))
    assert out.shape == (*expected, 3)


def test_resize_cover_crops_the_centre() -> None:
    image = np.zeros((10, 30), np.uint8)
    image[:, 10:20] = 255  # the middle third
    out = resize(image, ResizeParams(width=10, height=10, fit="cover"))
    assert out.shape == (10, 10)
    assert np.all(out == 255)


def test_resize_constant_image_stays_constant_both_ways() -> None:
    image = np.full((20, 30, 4), 99, np.uint8)
    assert np.all(resize(image, ResizeParams(width=7)) == 99)
    assert np.all(resize(image, ResizeParams(width=70)) == 99)


def test_resize_needs_width_or_height() -> None:
    with pytest.raises(ValueError, match="width or height"):
        ResizeParams()


def test_resize_refuses_an_extreme_aspect_result() -> None:
    tall = np.zeros((100, 1), np.uint8)
    with pytest.raises(InvalidParameter, match=r"resize\.width"):
        resize(tall, ResizeParams(width=200))


def test_operations_return_uint8() -> None:
    image = np.random.default_rng(4).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    for op in all_operations():
        defaults = {"resize": {"width": 5}, "crop": {"width": 5, "height": 4}}.get(op.name, {})
        out = op(image, params(op.params, **defaults))
        assert out.dtype == np.uint8, op.name
