"""Per-pixel tone operations: grey conversion, look-up tables, histogram equalisation.

Every operation here maps each pixel on its own, so none has border handling.
Tone curves are 256-entry look-up tables applied with ``cv2.LUT`` (exact, one
table read per sample); alpha, where present, is never changed.
"""

import cv2
import numpy as np
from pydantic import Field

from processor.operations.alpha import on_colour
from processor.operations.registry import NoParams, Params, operation


def apply_tone_curve(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every colour sample through a 256-entry uint8 table, leaving alpha unchanged."""

    def lookup(colour: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.LUT(colour, table)
        return out

    return on_colour(image, lookup)


def _round_table(values: np.ndarray) -> np.ndarray:
    """Round a float tone curve half up and saturate it to a uint8 table."""
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def luma(colour: np.ndarray) -> np.ndarray:
    """Return the BT.601 luma of colour channels (HxW or HxWx3); grey is returned as it is."""
    if colour.ndim == 2:
        return colour
    grey: np.ndarray = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    return grey


@operation(NoParams, scale_free=True)
def grayscale(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Convert to grey with ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B).

    RGB becomes L and RGBA becomes LA with the alpha channel kept; L and LA are
    returned unchanged (as a copy). OpenCV computes the weighted sum in fixed
    point and rounds to nearest, so results are within one level of the exact
    luma. No neighbourhood is involved, so there is no border handling.
    """
    if image.ndim == 2 or image.shape[2] == 2:
        return image.copy()
    return on_colour(image, luma)


@operation(NoParams, scale_free=True)
def invert(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Invert the colours: every sample v becomes 255 - v.

    Exact (integer table). Alpha is kept, so transparent areas stay transparent.
    """
    return apply_tone_curve(image, 255 - np.arange(256, dtype=np.uint8))


class BrightnessParams(Params):
    """Parameters of ``brightness``."""

    offset: int = Field(
        default=0,
        ge=-255,
        le=255,
        description="Levels added to every colour sample; results saturate at 0 and 255.",
    )


@operation(BrightnessParams, scale_free=True)
def brightness(image: np.ndarray, params: BrightnessParams) -> np.ndarray:
    """Brighten or darken by adding ``offset`` levels to every colour sample.

    An additive shift, not a gain: v becomes ``clip(v + offset, 0, 255)``, exact
    in integers, so detail near black or white saturates rather than scaling.
    Alpha is kept.
    """
    values = np.arange(256, dtype=np.int16) + params.offset
    return apply_tone_curve(image, np.clip(values, 0, 255).astype(np.uint8))


class ContrastParams(Params):
    """Parameters of ``contrast``."""

    factor: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Gain about mid-grey 128: 0 gives flat grey, 1 leaves the image unchanged.",
    )


@operation(ContrastParams, scale_free=True)
def contrast(image: np.ndarray, params: ContrastParams) -> np.ndarray:
    """Scale contrast by ``factor`` about mid-grey 128.

    v becomes ``clip(round(128 + factor * (v - 128)), 0, 255)``, rounded half
    up. The pivot is the fixed level 128 rather than the image mean, so the
    result depends only on the pixel and equal inputs give equal outputs across
    images. Alpha is kept.
    """
    levels = np.arange(256, dtype=np.float64)
    return apply_tone_curve(image, _round_table(128 + params.factor * (levels - 128)))


class ThresholdParams(Params):
    """Parameters of ``threshold``."""

    level: int = Field(
        default=128,
        ge=0,
        le=255,
        description="Luma at or above this level becomes white (255); below it, black (0).",
    )


@operation(ThresholdParams)
def threshold(image: np.ndarray, params: ThresholdParams) -> np.ndarray:
    """Binarise: luma at or above ``level`` becomes 255, below it 0.

    Colour images are first reduced to BT.601 luma (as ``grayscale``), so the
    result is grey: L, or LA with the alpha kept. ``level=0`` makes everything
    white.
    """
    table = np.where(np.arange(256) >= params.level, 255, 0).astype(np.uint8)

    def binarise(colour: np.ndarray) -> np.ndarray:
        grey: np.ndarray = cv2.LUT(luma(colour), table)
        return grey

    return on_colour(image, binarise)


@operation(NoParams)
def equalize(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Spread the tones evenly by histogram equalisation of the luma.

    Grey images are equalised directly (``cv2.equalizeHist``): with c the
    cumulative histogram and c0 the count of the darkest level present, level v
    becomes ``round(255 * (c(v) - c0) / (N - c0))``, so the darkest level goes to
    0 and the brightest to 255; a constant image is left unchanged. Colour
    images are converted to YCrCb, only Y is equalised and the result converted
    back, so hues are kept (within the rounding of the two conversions). Alpha
    is kept.
    """
    return on_colour(image, _equalize_colour)


def _equalize_colour(colour: np.ndarray) -> np.ndarray:
    """Equalise grey directly, colour through the Y of YCrCb."""
    if colour.ndim == 2:
        grey: np.ndarray = cv2.equalizeHist(colour)
        return grey
    y, cr, cb = cv2.split(cv2.cvtColor(colour, cv2.COLOR_RGB2YCrCb))
    out: np.ndarray = cv2.cvtColor(cv2.merge([cv2.equalizeHist(y), cr, cb]), cv2.COLOR_YCrCb2RGB)
    return out
