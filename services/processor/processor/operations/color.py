"""Colour operations."""

import cv2
import numpy as np

from processor.operations.registry import NoParams, operation


@operation(NoParams)
def grayscale(image: np.ndarray, params: NoParams) -> np.ndarray:
    """Convert to grey with ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B).

    RGB becomes L and RGBA becomes LA with the alpha channel kept; L and LA are
    returned unchanged (as a copy). OpenCV computes the weighted sum in fixed
    point and rounds to nearest, so results are within one level of the exact
    luma. No neighbourhood is involved, so there is no border handling.
    """
    if image.ndim == 2 or image.shape[2] == 2:
        return image.copy()
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    luma = cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    return cv2.merge([luma, image[:, :, 3]])
