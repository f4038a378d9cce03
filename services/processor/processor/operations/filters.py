"""Neighbourhood filters: low-pass (Gaussian or frequency domain), unsharp mask, median."""

from typing import Any, Literal

import cv2
import numpy as np
import scipy.fft
from pydantic import Field, field_validator, model_validator

from processor.operations.alpha import on_colour
from processor.operations.registry import Params, operation

_METHOD_PARAMS = {
    "gaussian": {"sigma": 2.0},
    "butterworth": {"cutoff": 0.5, "order": 2},
    "ideal": {"cutoff": 0.5},
}


def _applies_when(param: str) -> dict[str, Any]:
    """The schema note telling forms which methods take ``param`` (see the registry)."""
    methods = [method for method, defaults in _METHOD_PARAMS.items() if param in defaults]
    return {"x-applies-when": {"method": methods}}


class LowPassParams(Params):
    """Parameters of ``low_pass``; each method takes only its own parameters."""

    method: Literal["gaussian", "butterworth", "ideal"] = Field(
        default="gaussian",
        description=(
            "gaussian: spatial Gaussian (sigma); butterworth or ideal: frequency-domain "
            "filter (cutoff, and order for butterworth)."
        ),
    )
    sigma: float | None = Field(
        default=None,
        json_schema_extra=_applies_when("sigma"),
        gt=0,
        le=100,
        description="gaussian: standard deviation in pixels (default 2); larger blurs more.",
    )
    cutoff: float | None = Field(
        default=None,
        json_schema_extra=_applies_when("cutoff"),
        gt=0,
        le=1,
        description=(
            "butterworth, ideal: cut-off frequency as a fraction of Nyquist (default 0.5); "
            "smaller blurs more."
        ),
    )
    order: int | None = Field(
        default=None,
        json_schema_extra=_applies_when("order"),
        ge=1,
        le=10,
        description="butterworth: filter order (default 2); higher is a sharper cut-off.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_method_defaults(cls, data: Any) -> Any:
        """Refuse parameters foreign to the method and fill the method's defaults."""
        if not isinstance(data, dict):
            return data
        method = data.get("method", "gaussian")
        defaults = _METHOD_PARAMS.get(method) if isinstance(method, str) else None
        if defaults is None:
            return data  # the Literal check reports the bad method
        given = {key for key, value in data.items() if value is not None}
        foreign = sorted(given & {"sigma", "cutoff", "order"} - set(defaults))
        if foreign:
            raise ValueError(
                f"{', '.join(foreign)} does not apply to method={method}; "
                f"it takes {', '.join(defaults)}"
            )
        return {**defaults, **{key: value for key, value in data.items() if value is not None}}


def _frequency_low_pass(image: np.ndarray, params: LowPassParams) -> np.ndarray:
    """Filter by multiplying the spectrum with a radial transfer function."""
    height, width = image.shape[:2]
    # Reflecting an eighth of each side (at least 8 px) keeps the FFT's implied
    # periodic wrap-around away from the visible edges.
    pad_y = min(height - 1, max(8, height // 8))
    pad_x = min(width - 1, max(8, width // 8))
    full_h = scipy.fft.next_fast_len(height + 2 * pad_y, real=True)
    full_w = scipy.fft.next_fast_len(width + 2 * pad_x, real=True)
    padded = cv2.copyMakeBorder(
        image,
        pad_y,
        full_h - height - pad_y,
        pad_x,
        full_w - width - pad_x,
        cv2.BORDER_REFLECT_101,
    )
    if padded.ndim == 2:
        padded = padded[:, :, np.newaxis]
    samples = padded.astype(np.float32)
    spectrum = scipy.fft.rfft2(samples, axes=(0, 1))
    # Frequencies in cycles per pixel divided by Nyquist (0.5): 1 at Nyquist on each axis.
    fy = scipy.fft.fftfreq(full_h).astype(np.float32) / 0.5
    fx = scipy.fft.rfftfreq(full_w).astype(np.float32) / 0.5
    radius = np.sqrt(fy[:, np.newaxis] ** 2 + fx[np.newaxis, :] ** 2)
    assert params.cutoff is not None
    if params.method == "ideal":
        gain = (radius <= params.cutoff).astype(np.float32)
    else:
        assert params.order is not None
        # In float64: in float32 a cutoff below 1e-45 is 0, and 0 / 0 at the centre would
        # blacken the image. Overflow beyond the cut-off is a gain of 0, as it should be.
        with np.errstate(over="ignore"):
            ratio = radius.astype(np.float64) / params.cutoff
            gain = (1 / (1 + ratio ** (2 * params.order))).astype(np.float32)
    spectrum *= gain[:, :, np.newaxis]
    filtered = scipy.fft.irfft2(spectrum, s=(full_h, full_w), axes=(0, 1))
    inner = filtered[pad_y : pad_y + height, pad_x : pad_x + width]
    out: np.ndarray = np.clip(np.rint(inner), 0, 255).astype(np.uint8)
    return out[:, :, 0] if image.ndim == 2 else out


@operation(LowPassParams)
def low_pass(image: np.ndarray, params: LowPassParams) -> np.ndarray:
    """Blur with a Gaussian (``sigma``) or a frequency-domain Butterworth/ideal low-pass filter.

    Every channel, alpha included, is filtered alike. ``gaussian`` convolves
    with OpenCV (``ksize=(0, 0)``: about 3 sigma each side for uint8, fixed-point,
    rounded to nearest), mirroring the border without repeating the edge pixel
    (``BORDER_REFLECT_101``: ``dcb|abcd|cba``). ``butterworth`` multiplies the
    spectrum by ``1 / (1 + (r / cutoff) ** (2 * order))`` and ``ideal`` keeps
    frequencies with ``r <= cutoff``, r being the radial frequency divided by
    Nyquist; both run scipy.fft's rfft2 on float32 per channel after mirroring
    an eighth of each side (at least 8 px, ``BORDER_REFLECT_101``, the far sides
    a little more to reach a fast FFT length) so the FFT's wrap-around does not
    bleed across opposite edges, and round to nearest.
    The ideal filter rings near sharp edges, as it must. A constant image stays
    constant with every method.
    """
    if params.method != "gaussian":
        return _frequency_low_pass(image, params)
    assert params.sigma is not None
    out: np.ndarray = cv2.GaussianBlur(
        image, (0, 0), sigmaX=params.sigma, sigmaY=params.sigma, borderType=cv2.BORDER_REFLECT_101
    )
    return out


class SharpenParams(Params):
    """Parameters of ``sharpen``."""

    amount: float = Field(
        default=1.0,
        ge=0,
        le=20,
        description="Strength: how much of the detail (image minus blur) is added back.",
    )
    sigma: float = Field(
        default=1.0,
        gt=0,
        le=50,
        description="Standard deviation of the blur, in pixels: the size of detail enhanced.",
    )


@operation(SharpenParams)
def sharpen(image: np.ndarray, params: SharpenParams) -> np.ndarray:
    """Sharpen with an unsharp mask: add ``amount`` times the detail lost to a Gaussian blur.

    With b the uint8 Gaussian blur of v (as ``low_pass`` with ``sigma``, mirrored
    borders ``BORDER_REFLECT_101``), each colour sample becomes
    ``clip(round(v + amount * (v - b)), 0, 255)`` in one saturating OpenCV pass
    (``addWeighted``). Alpha is kept unchanged, so edges of a cut-out do not
    grow halos. ``amount=0`` is the identity.
    """

    def unsharp(colour: np.ndarray) -> np.ndarray:
        blurred = cv2.GaussianBlur(
            colour,
            (0, 0),
            sigmaX=params.sigma,
            sigmaY=params.sigma,
            borderType=cv2.BORDER_REFLECT_101,
        )
        out: np.ndarray = cv2.addWeighted(colour, 1 + params.amount, blurred, -params.amount, 0)
        return out

    return on_colour(image, unsharp)


class MedianParams(Params):
    """Parameters of ``median``."""

    size: int = Field(
        default=3,
        ge=3,
        le=99,
        # JSON Schema's "odd", so forms and clients learn what the validator below refuses.
        json_schema_extra={"not": {"multipleOf": 2}},
        description="Odd side of the square window, in pixels.",
    )

    @field_validator("size")
    @classmethod
    def _odd(cls, size: int) -> int:
        """Refuse even window sizes, which have no centre pixel."""
        if size % 2 == 0:
            raise ValueError(f"size must be odd, got {size}")
        return size


@operation(MedianParams)
def median(image: np.ndarray, params: MedianParams) -> np.ndarray:
    """Replace each sample by the median of the ``size`` x ``size`` window around it.

    Removes salt-and-pepper noise while keeping edges. Every channel, alpha
    included, is filtered on its own (``cv2.medianBlur``; a 2-channel LA image is
    split first, since OpenCV takes 1, 3 or 4 channels). Borders repeat the edge
    pixel (``BORDER_REPLICATE``). The median of integers is an integer, so there
    is no rounding.
    """
    if image.ndim == 3 and image.shape[2] == 2:
        planes = [cv2.medianBlur(np.ascontiguousarray(p), params.size) for p in cv2.split(image)]
        merged: np.ndarray = cv2.merge(planes)
        return merged
    out: np.ndarray = cv2.medianBlur(image, params.size)
    return out
