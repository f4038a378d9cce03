"""Work on the colour, keep the alpha: the one place that splits and re-joins alpha channels.

Operation arrays are HxW (L), HxWx2 (LA), HxWx3 (RGB) or HxWx4 (RGBA); in LA and RGBA
the last channel is alpha. Tone and neighbourhood operations change colour only, so a
cut-out keeps its shape and its edges grow no halo.
"""

from collections.abc import Callable

import cv2
import numpy as np


def has_alpha(image: np.ndarray) -> bool:
    """Return True for LA and RGBA arrays, whose last channel is alpha."""
    return image.ndim == 3 and image.shape[2] in (2, 4)


def colour_of(image: np.ndarray) -> np.ndarray:
    """Return the colour channels of ``image``: HxW for L and LA, HxWx3 for RGB and RGBA."""
    if not has_alpha(image):
        return image
    colour = image[:, :, :-1]
    return np.ascontiguousarray(colour[:, :, 0] if colour.shape[2] == 1 else colour)


def on_colour(image: np.ndarray, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``func`` to the colour channels of ``image`` and put its alpha back unchanged.

    ``func`` gets HxW or HxWx3 and may return either (``grayscale`` turns RGB into L);
    the result has the alpha of ``image`` appended when it had one.
    """
    out = func(colour_of(image))
    if not has_alpha(image):
        return out
    channels = [out] if out.ndim == 2 else list(cv2.split(out))
    merged: np.ndarray = cv2.merge([*channels, image[:, :, -1]])
    return merged


def with_opaque_alpha(image: np.ndarray) -> np.ndarray:
    """Return L as LA and RGB as RGBA with alpha 255 everywhere; LA and RGBA unchanged."""
    if has_alpha(image):
        return image
    if image.ndim == 2:
        merged: np.ndarray = cv2.merge([image, np.full_like(image, 255)])
        return merged
    rgba: np.ndarray = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    return rgba
