"""Neighbourhood filters."""

import cv2
import numpy as np
from pydantic import Field

from processor.operations.registry import Params, operation


class LowPassParams(Params):
    """Parameters of ``low_pass``."""

    sigma: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="Standard deviation of the Gaussian, in pixels; larger blurs more.",
    )


@operation(LowPassParams)
def low_pass(image: np.ndarray, params: LowPassParams) -> np.ndarray:
    """Blur with a Gaussian low-pass filter of standard deviation ``sigma``.

    Every channel, alpha included, is filtered alike. The kernel size follows
    from sigma (OpenCV's ``ksize=(0, 0)``: about 3 sigma each side for uint8).
    Borders mirror the image without repeating the edge pixel
    (``BORDER_REFLECT_101``: ``dcb|abcd|cba``). OpenCV filters uint8 in fixed
    point and rounds to nearest, so a constant image stays exactly constant.
    """
    return cv2.GaussianBlur(
        image, (0, 0), sigmaX=params.sigma, sigmaY=params.sigma, borderType=cv2.BORDER_REFLECT_101
    )
