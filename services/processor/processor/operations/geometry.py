"""Geometric operations: crop, rotate, resize."""

import math
from typing import Literal, Self

import cv2
import numpy as np
from pydantic import Field, model_validator

from processor.errors import InvalidParameter
from processor.operations.registry import NoParams, Params, check_output_size, operation

MAX_SIDE = 8192


@operation(NoParams)
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


def _rotated_size(width: int, height: int, radians: float) -> tuple[int, int]:
    """Return the smallest canvas holding a widthxheight image turned by ``radians``."""
    cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
    # Rounding first stops float noise (e.g. 427.00000000000006) from adding a pixel.
    new_width = math.ceil(round(width * cos + height * sin, 9))
    new_height = math.ceil(round(width * sin + height * cos, 9))
    return max(1, new_width), max(1, new_height)


@operation(RotateParams)
def rotate(image: np.ndarray, params: RotateParams) -> np.ndarray:
    """Rotate about the centre, counter-clockwise for positive degrees.

    Multiples of 90° are exact transposes (``np.rot90``) when ``expand`` is set
    or the image is square. Other angles use bilinear interpolation
    (``cv2.warpAffine``, ``INTER_LINEAR``, results rounded to nearest); pixels
    coming from outside the source are 0, i.e. black, and transparent where the
    image has alpha (``BORDER_CONSTANT``). With ``expand`` the canvas becomes
    ``ceil(w|cos| + h|sin|)`` x ``ceil(w|sin| + h|cos|)`` with the image centred;
    without it the canvas keeps the input size and the corners are cut off.
    """
    height, width = image.shape[:2]
    quarter_turns, remainder = divmod(params.degrees, 90)
    if remainder == 0 and (params.expand or width == height):
        return np.ascontiguousarray(np.rot90(image, int(quarter_turns) % 4))
    radians = math.radians(params.degrees)
    new_width, new_height = (
        _rotated_size(width, height, radians) if params.expand else (width, height)
    )
    check_output_size("rotate", new_width, new_height)
    # Pixel centres run from 0 to n - 1, so the geometric centre is at (n - 1) / 2.
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), params.degrees, 1.0)
    matrix[0, 2] += (new_width - width) / 2
    matrix[1, 2] += (new_height - height) / 2
    return cv2.warpAffine(
        image,
        matrix,
        (new_width, new_height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )


class ResizeParams(Params):
    """Parameters of ``resize``."""

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


def _target_size(width: int, height: int, params: ResizeParams) -> tuple[int, int]:
    """Return the size to resample to (before any cover crop)."""
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


@operation(ResizeParams)
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
    new_width, new_height = _target_size(width, height, params)
    if new_width > MAX_SIDE or new_height > MAX_SIDE:
        # Only possible with one side given and an extreme aspect ratio.
        given = "width" if params.width is not None else "height"
        raise InvalidParameter(
            f"resize.{given}: keeping the aspect ratio gives {new_width}x{new_height}, "
            f"over {MAX_SIDE} pixels on a side"
        )
    check_output_size("resize", new_width, new_height)
    shrinking = new_width <= width and new_height <= height
    out = cv2.resize(
        image,
        (new_width, new_height),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    if params.fit == "cover" and params.width is not None and params.height is not None:
        top = (new_height - params.height) // 2
        left = (new_width - params.width) // 2
        out = out[top : top + params.height, left : left + params.width].copy()
    return out
