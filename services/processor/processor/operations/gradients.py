"""Image gradients (Sobel) and the edge map built from them."""

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from processor.operations.alpha import on_colour
from processor.operations.registry import NoParams, Params, operation


class GradientParams(Params):
    """Parameters of ``gradient_x`` and ``gradient_y``."""

    mode: Literal["signed", "abs"] = Field(
        default="signed",
        description=(
            "signed: zero gradient is mid-grey 128; abs: gradient magnitude, zero is black."
        ),
    )


def _sobel(colour: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Return the 3x3 Sobel derivative as int16 (|g| <= 4 * 255 = 1020), edges replicated."""
    grad: np.ndarray = cv2.Sobel(
        colour, cv2.CV_16S, dx, dy, ksize=3, borderType=cv2.BORDER_REPLICATE
    )
    return grad


def _gradient(image: np.ndarray, dx: int, dy: int, mode: str) -> np.ndarray:
    """Map a Sobel derivative of the colour channels to uint8 and keep alpha."""
    return on_colour(image, lambda colour: _scaled_gradient(colour, dx, dy, mode))


def _scaled_gradient(colour: np.ndarray, dx: int, dy: int, mode: str) -> np.ndarray:
    """Return the Sobel derivative of colour channels mapped to uint8 by ``mode``."""
    grad = _sobel(colour, dx, dy)
    # convertScaleAbs rounds half to even; shifting by just under half a level turns
    # that into the documented floor((g + 1028) / 8) and floor((|g| + 2) / 4) exactly,
    # since g / 8 and |g| / 4 never land within 1/16 of a tie after the shift.
    if mode == "signed":
        out: np.ndarray = cv2.convertScaleAbs(grad, alpha=1 / 8, beta=128.5 - 7 / 16)
    else:
        out = cv2.convertScaleAbs(np.abs(grad), alpha=1 / 4, beta=0.5 - 3 / 8)
    return out


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
    return _gradient(image, 1, 0, params.mode)


@operation(GradientParams, output="graphic")
def gradient_y(image: np.ndarray, params: GradientParams) -> np.ndarray:
    """Vertical derivative (3x3 Sobel), per colour channel.

    Same mapping as ``gradient_x`` with rows and columns swapped: signed mode gives
    128 + g/8 rounded half up (a vertical ramp of k levels per pixel gives exactly
    128 + k in the interior), abs mode gives |g|/4 rounded half up, both clipped to
    0..255. Borders repeat the edge pixel (``BORDER_REPLICATE``). Alpha is passed
    through unchanged.
    """
    return _gradient(image, 0, 1, params.mode)


@operation(NoParams, output="graphic")
def edges(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Edge strength: the Sobel gradient magnitude, per colour channel.

    With gx and gy the 3x3 Sobel derivatives (as ``gradient_x`` and
    ``gradient_y``, borders ``BORDER_REPLICATE``), each colour sample becomes
    ``clip(round(sqrt(gx² + gy²) / 4), 0, 255)`` — the Euclidean magnitude on the
    scale of ``gradient_x``'s abs mode, so a ramp of k levels per pixel gives 2k;
    it is computed in float32 (``cv2.magnitude``) and rounded half to even.
    Flat areas are black. Run ``grayscale`` first for a single-channel edge map.
    Alpha is passed through unchanged.
    """
    return on_colour(image, _magnitude)


def _magnitude(colour: np.ndarray) -> np.ndarray:
    """Return the Sobel gradient magnitude of colour channels, scaled by 1/4 to uint8."""
    gx = _sobel(colour, 1, 0).astype(np.float32)
    gy = _sobel(colour, 0, 1).astype(np.float32)
    magnitude = cv2.magnitude(gx.reshape(gx.shape[0], -1), gy.reshape(gy.shape[0], -1))
    out: np.ndarray = cv2.convertScaleAbs(magnitude, alpha=1 / 4).reshape(colour.shape)
    return out
