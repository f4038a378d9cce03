"""Geometric operations: crops, flips, rotation and resizing."""

import math
from typing import Annotated, Literal, Self

import cv2
import numpy as np
from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from processor.errors import InvalidParameter
from processor.operations.alpha import has_alpha, with_opaque_alpha
from processor.operations.registry import (
    NoParams,
    Params,
    ShrinkOnLoad,
    check_output_size,
    operation,
    output_carries_alpha,
)

MAX_SIDE = 8192
MAX_COORDINATE = 65_535


def _square_size(params: NoParams, width: int, height: int) -> tuple[int, int]:
    """Return the size of the centred square ``square_crop`` cuts out."""
    side = min(width, height)
    return side, side


@operation(NoParams, output_size=_square_size)
def square_crop(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Crop the centred square whose side is the shorter of width and height.

    The offset along the longer side is ``(long - short) // 2``, so an odd
    surplus leaves the extra pixel on the right or bottom. Pixels are copied
    unchanged (no interpolation, no border), into a new contiguous array.
    """
    height, width = image.shape[:2]
    side = min(width, height)
    top = (height - side) // 2
    left = (width - side) // 2
    return image[top : top + side, left : left + side].copy()


class CropParams(Params):
    """Parameters of ``crop``."""

    x: int = Field(default=0, ge=0, le=MAX_COORDINATE, description="Left edge, in pixels.")
    y: int = Field(default=0, ge=0, le=MAX_COORDINATE, description="Top edge, in pixels.")
    width: int = Field(ge=1, le=MAX_COORDINATE, description="Width of the region, in pixels.")
    height: int = Field(ge=1, le=MAX_COORDINATE, description="Height of the region, in pixels.")


def _crop_size(params: CropParams, width: int, height: int) -> tuple[int, int]:
    """Return the size of the region ``crop`` cuts out."""
    return params.width, params.height


@operation(CropParams, output_size=_crop_size)
def crop(image: np.ndarray, params: CropParams) -> np.ndarray:
    """Cut out the ``width`` x ``height`` region whose top-left corner is (``x``, ``y``).

    The region must lie inside the image: one that does not is refused (422,
    naming the field) rather than clamped, so a caller never receives silently
    smaller output. Pixels are copied unchanged into a new contiguous array.
    """
    height, width = image.shape[:2]
    if params.x + params.width > width:
        raise InvalidParameter(
            f"crop.width: x + width = {params.x + params.width} is beyond the image width {width}"
        )
    if params.y + params.height > height:
        raise InvalidParameter(
            f"crop.height: y + height = {params.y + params.height} "
            f"is beyond the image height {height}"
        )
    region = image[params.y : params.y + params.height, params.x : params.x + params.width]
    return region.copy()


class FlipParams(Params):
    """Parameters of ``flip``."""

    axis: Literal["horizontal", "vertical", "both"] = Field(
        default="horizontal",
        description="horizontal mirrors left and right, vertical top and bottom, both turns 180°.",
    )


_FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}


@operation(FlipParams, scale_free=True)
def flip(image: np.ndarray, params: FlipParams) -> np.ndarray:
    """Mirror the image left-right (``horizontal``), top-bottom (``vertical``) or ``both``.

    An exact copy with pixels reordered (``cv2.flip``); ``both`` equals a 180°
    rotation. Alpha moves with its pixel.
    """
    out: np.ndarray = cv2.flip(image, _FLIP_CODES[params.axis])
    return out


NamedColour = Literal["transparent", "black", "white"]
HexColour = Annotated[str, StringConstraints(pattern=r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")]
_NAMED_RGBA = {"transparent": (0, 0, 0, 0), "black": (0, 0, 0, 255), "white": (255, 255, 255, 255)}
_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
}


def fill_rgba(fill: str) -> tuple[int, int, int, int]:
    """Return the (red, green, blue, alpha) of a named or hex ``fill`` colour."""
    if fill in _NAMED_RGBA:
        return _NAMED_RGBA[fill]
    digits = fill.removeprefix("#")
    red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    alpha = int(digits[6:8], 16) if len(digits) == 8 else 255
    return red, green, blue, alpha


def fill_value(fill: str, channels: int) -> tuple[float, ...]:
    """Return the border value of ``fill`` for an image with ``channels`` channels.

    Grey images get the colour's BT.601 luma; images without alpha get its
    colour only (so ``transparent`` is black there).
    """
    red, green, blue, alpha = fill_rgba(fill)
    grey = float(round(0.299 * red + 0.587 * green + 0.114 * blue))
    values: dict[int, tuple[float, ...]] = {
        1: (grey,),
        2: (grey, alpha),
        3: (red, green, blue),
        4: (red, green, blue, alpha),
    }
    return values[channels]


class RotateParams(Params):
    """Parameters of ``rotate``."""

    degrees: float = Field(
        default=90,
        ge=-360,
        le=360,
        description="Counter-clockwise angle in degrees; negative turns clockwise.",
    )
    expand: bool = Field(
        default=True,
        description="Grow the canvas to hold the whole rotated image; otherwise keep its size.",
    )
    fill: NamedColour | HexColour = Field(
        default="transparent",
        description=(
            "Colour of the uncovered corners: transparent (PNG and WebP output; black in "
            "JPEG, which has no transparency), black, white or hex rrggbb[aa] (a leading # "
            "is optional; alpha below ff, like transparent, only in PNG and WebP)."
        ),
    )
    interpolation: Literal["nearest", "bilinear", "bicubic"] = Field(
        default="bilinear", description="How pixels between source pixels are computed."
    )

    @field_validator("fill")
    @classmethod
    def _normalise_fill(cls, fill: str) -> str:
        """Write hex colours one way (lower case, no #) so equal pipelines compare equal."""
        return fill if fill in _NAMED_RGBA else fill.removeprefix("#").lower()


def _rotated_size(width: int, height: int, radians: float) -> tuple[int, int]:
    """Return the smallest canvas holding a widthxheight image turned by ``radians``."""
    cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
    # Rounding first stops float noise (e.g. 427.00000000000006) from adding a pixel.
    new_width = math.ceil(round(width * cos + height * sin, 9))
    new_height = math.ceil(round(width * sin + height * cos, 9))
    return max(1, new_width), max(1, new_height)


_QUARTER_TURNS = {
    1: cv2.ROTATE_90_COUNTERCLOCKWISE,
    2: cv2.ROTATE_180,
    3: cv2.ROTATE_90_CLOCKWISE,
}


def _exact_turns(params: RotateParams, width: int, height: int) -> int | None:
    """Return the quarter turns (0-3) when ``rotate`` is an exact transpose, else None."""
    quarter_turns, remainder = divmod(params.degrees, 90)
    if remainder == 0 and (params.expand or width == height):
        return int(quarter_turns) % 4
    return None


def _rotate_size(params: RotateParams, width: int, height: int) -> tuple[int, int]:
    """Return the size of the canvas ``rotate`` gives a ``width`` x ``height`` image."""
    turns = _exact_turns(params, width, height)
    if turns is not None:
        return (height, width) if turns % 2 else (width, height)
    if not params.expand:
        return width, height
    return _rotated_size(width, height, math.radians(params.degrees))


@operation(RotateParams, output_size=_rotate_size, scale_free=True)
def rotate(image: np.ndarray, params: RotateParams) -> np.ndarray:
    """Rotate about the centre, counter-clockwise for positive degrees.

    Multiples of 90° are exact transposes (``cv2.rotate``, equal to
    ``np.rot90``) when ``expand`` is set or the image is square. Other angles
    resample with ``interpolation`` (``cv2.warpAffine``: nearest, bilinear or
    bicubic, fixed-point coordinates in 1/32 pixel, results rounded to nearest
    and saturated). Pixels coming from outside the source take the ``fill``
    colour (``BORDER_CONSTANT``; grey images get the colour's luma, images with
    alpha its alpha too), and pixels on the boundary blend the image with it.
    An image without alpha first gets an opaque alpha channel when the fill's
    alpha is below 255 (as ``transparent``'s) and the job's output format
    carries alpha (PNG, WebP), so its corners come out transparent; otherwise
    (JPEG output, or the function called outside a job) only the fill's colour
    is used, so ``transparent`` is black. With ``expand`` the canvas becomes
    ``ceil(w|cos| + h|sin|)`` x ``ceil(w|sin| + h|cos|)`` with the image centred;
    without it the canvas keeps the input size and the corners are cut off.
    """
    height, width = image.shape[:2]
    turns = _exact_turns(params, width, height)
    if turns == 0:
        return image.copy()
    if turns is not None:
        turned: np.ndarray = cv2.rotate(image, _QUARTER_TURNS[turns])
        return turned
    new_width, new_height = _rotate_size(params, width, height)
    check_output_size("rotate", new_width, new_height)
    if fill_rgba(params.fill)[3] < 255 and not has_alpha(image) and output_carries_alpha():
        image = with_opaque_alpha(image)
    # Pixel centres run from 0 to n - 1, so the geometric centre is at (n - 1) / 2.
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), params.degrees, 1.0)
    matrix[0, 2] += (new_width - width) / 2
    matrix[1, 2] += (new_height - height) / 2
    channels = 1 if image.ndim == 2 else image.shape[2]
    out: np.ndarray = cv2.warpAffine(
        image,
        matrix,
        (new_width, new_height),
        flags=_INTERPOLATIONS[params.interpolation],
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill_value(params.fill, channels),
    )
    return out


class ResizeParams(Params):
    """Parameters of ``resize``."""

    # The schema says what _needs_a_side checks: at least one of width and height.
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["width"]}, {"required": ["height"]}]}
    )

    width: int | None = Field(
        default=None, ge=1, le=MAX_SIDE, description="Target width in pixels."
    )
    height: int | None = Field(
        default=None, ge=1, le=MAX_SIDE, description="Target height in pixels."
    )
    fit: Literal["contain", "cover", "fill"] = Field(
        default="contain",
        description=(
            "With both sides given: contain fits inside the box, cover fills it and "
            "crops the centre, fill stretches to it."
        ),
    )

    @model_validator(mode="after")
    def _needs_a_side(self) -> Self:
        if self.width is None and self.height is None:
            raise ValueError("give width or height (or both)")
        return self


def _scaled(length: int, scale: float) -> int:
    """Return ``length * scale`` rounded, never below one pixel."""
    return max(1, round(length * scale))


def resize_target(width: int, height: int, params: ResizeParams) -> tuple[int, int]:
    """Return the size ``resize`` samples a ``width`` x ``height`` image to, before any crop."""
    if params.width is None:
        assert params.height is not None
        return _scaled(width, params.height / height), params.height
    if params.height is None:
        return params.width, _scaled(height, params.width / width)
    if params.fit == "fill":
        return params.width, params.height
    scales = (params.width / width, params.height / height)
    scale = min(scales) if params.fit == "contain" else max(scales)
    new_width, new_height = _scaled(width, scale), _scaled(height, scale)
    if params.fit == "cover":
        # Rounding may leave one side a pixel short of the box; never crop below it.
        return max(new_width, params.width), max(new_height, params.height)
    return min(new_width, params.width), min(new_height, params.height)


def resize_from(image: np.ndarray, params: ResizeParams, source: tuple[int, int]) -> np.ndarray:
    """Resize ``image`` as ``resize`` would resize a ``source``-sized original.

    Used when the decoder already shrank the image (JPEG draft mode): the output
    size is computed from the original's size, so it is the same either way.
    """
    width, height = source
    new_width, new_height = resize_target(width, height, params)
    if new_width > MAX_SIDE or new_height > MAX_SIDE:
        # Only possible with one side given and an extreme aspect ratio.
        given = "width" if params.width is not None else "height"
        raise InvalidParameter(
            f"resize.{given}: keeping the aspect ratio gives {new_width}x{new_height}, "
            f"over {MAX_SIDE} pixels on a side"
        )
    check_output_size("resize", new_width, new_height)
    in_height, in_width = image.shape[:2]
    shrinking = new_width <= in_width and new_height <= in_height
    out: np.ndarray = cv2.resize(
        image,
        (new_width, new_height),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    if params.fit == "cover" and params.width is not None and params.height is not None:
        top = (new_height - params.height) // 2
        left = (new_width - params.width) // 2
        out = out[top : top + params.height, left : left + params.width].copy()
    return out


def resized_size(params: ResizeParams, width: int, height: int) -> tuple[int, int]:
    """Return the size of ``resize``'s result for a ``width`` x ``height`` image."""
    if params.fit == "cover" and params.width is not None and params.height is not None:
        return params.width, params.height
    return resize_target(width, height, params)


def shrink_target(params: ResizeParams, width: int, height: int) -> tuple[int, int] | None:
    """Return the size ``resize`` shrinks a ``width`` x ``height`` image to; None unless smaller."""
    new_width, new_height = resize_target(width, height, params)
    if new_width >= width or new_height >= height:
        return None
    return new_width, new_height


@operation(
    ResizeParams,
    shrink_on_load=ShrinkOnLoad(target=shrink_target, run_from=resize_from),
    output_size=resized_size,
)
def resize(image: np.ndarray, params: ResizeParams) -> np.ndarray:
    """Resize to ``width`` and/or ``height``; the aspect ratio is kept unless both are given.

    With one side given the other follows the aspect ratio (rounded to nearest,
    at least 1 pixel, at most 8192). With both, ``fit`` decides: ``contain`` fits
    inside the box, ``cover`` fills it and crops the centre (offset
    ``(size - box) // 2``), ``fill`` stretches. Shrinking uses area averaging
    (``INTER_AREA``), enlarging bilinear interpolation (``INTER_LINEAR``);
    OpenCV rounds to nearest and replicates edge pixels at the border.
    """
    height, width = image.shape[:2]
    return resize_from(image, params, source=(width, height))
