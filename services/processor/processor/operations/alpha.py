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
