"""Image gradients (Sobel)."""

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from processor.operations.registry import Params, operation


class GradientParams(Params):
    """Parameters of ``gradient_x`` and ``gradient_y``."""

    mode: Literal["signed", "abs"] = Field(
        default="signed",
        description=(
            "signed: zero gradient is mid-grey 128; abs: gradient magnitude, zero is black."
        ),
    )


def _sobel(image: np.ndarray, dx: int, dy: int, mode: str) -> np.ndarray:
    """Apply a 3x3 Sobel derivative to the colour channels and map it to uint8."""
    has_alpha = image.ndim == 3 and image.shape[2] in (2, 4)
    colour = image[:, :, :-1] if has_alpha else image
    grad: np.ndarray = cv2.Sobel(
        np.ascontiguousarray(colour), cv2.CV_16S, dx, dy, ksize=3, borderType=cv2.BORDER_REPLICATE
    )
    # |grad| <= 4 * 255 = 1020, so every intermediate below fits in int16 exactly.
    if mode == "signed":
        mapped = np.right_shift(grad + 1028, 3)  # floor((g + 1028) / 8): 128 + g/8 half up
    else:
        mapped = np.right_shift(np.abs(grad) + 2, 2)  # |g| / 4 rounded half up
    out: np.ndarray = np.clip(mapped, 0, 255).astype(np.uint8)
    if not has_alpha:
        return out
    channels = [out] if out.ndim == 2 else list(cv2.split(out))
    merged: np.ndarray = cv2.merge([*channels, image[:, :, -1]])
    return merged


@operation(GradientParams, output="graphic")
def gradient_x(image: np.ndarray, params: GradientParams) -> np.ndarray:
    """Horizontal derivative (3x3 Sobel), per colour channel.

    The Sobel response g (int16, |g| <= 1020) becomes ``clip(floor((g + 1028) / 8),
    0, 255)`` in signed mode, i.e. 128 + g/8 rounded half up, so a horizontal ramp
    rising k levels per pixel gives exactly 128 + k away from the borders; in abs
    mode it becomes ``clip(floor((|g| + 2) / 4), 0, 255)``. Borders repeat the edge
    pixel (``BORDER_REPLICATE``), so the outermost columns see half the slope.
    Alpha is passed through unchanged.
    """
    return _sobel(image, 1, 0, params.mode)


@operation(GradientParams, output="graphic")
def gradient_y(image: np.ndarray, params: GradientParams) -> np.ndarray:
    """Vertical derivative (3x3 Sobel), per colour channel.

    Same mapping as ``gradient_x`` with rows and columns swapped: signed mode gives
    128 + g/8 rounded half up (a vertical ramp of k levels per pixel gives exactly
    128 + k in the interior), abs mode gives |g|/4 rounded half up, both clipped to
    0..255. Borders repeat the edge pixel (``BORDER_REPLICATE``). Alpha is passed
    through unchanged.
    """
    return _sobel(image, 0, 1, params.mode)
