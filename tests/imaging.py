"""Test pictures in every format Darkroom reads, stored with each EXIF orientation.

``oriented(fmt, orientation)`` returns the bytes of ``upright_picture()`` stored the way
a camera does it: the pixels as the sensor read them, plus the orientation that tells a
viewer how to turn them upright. A reader that applies the orientation exactly once gets
``upright_picture()`` back (exactly for lossless formats, within ``TOLERANCE`` otherwise).
"""

import io

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

EXIF_ORIENTATION = 0x0112
# Formats that can carry an orientation, by the name Darkroom gives them.
ORIENTABLE = ("jpeg", "png", "webp", "tiff", "heic", "avif")
LOSSLESS = frozenset({"png", "tiff", "webp"})
# Mean absolute difference allowed for the lossy formats at the quality used here.
TOLERANCE = 6.0
_PILLOW_NAMES = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "tiff": "TIFF",
    "heic": "HEIF",
    "avif": "AVIF",
    "gif": "GIF",
    "bmp": "BMP",
}


_DEFAULT_OPTIONS: dict[str, dict[str, object]] = {
    "jpeg": {"quality": 95},
    "webp": {"lossless": True},
    "avif": {"quality": 95},
    "heic": {"quality": 95},
}


def upright_picture(width: int = 48, height: int = 32) -> np.ndarray:
    """An RGB picture whose four quadrants differ in colour, so every turn and flip shows."""
    pixels = np.empty((height, width, 3), np.uint8)
    top, left = slice(0, height // 2), slice(0, width // 2)
    bottom, right = slice(height // 2, height), slice(width // 2, width)
    pixels[top, left] = (230, 40, 40)
    pixels[top, right] = (40, 200, 60)
    pixels[bottom, left] = (40, 60, 220)
    pixels[bottom, right] = (240, 220, 50)
    return pixels


# How each EXIF orientation stores an upright picture: the inverse of the turn a viewer
# applies (orientation 6, "turn 90 degrees clockwise to view", is stored turned anticlockwise).
_STORE = {
    1: lambda p: p,
    2: lambda p: p[:, ::-1],
    3: lambda p: p[::-1, ::-1],
    4: lambda p: p[::-1, :],
    5: lambda p: p.transpose(1, 0, 2),
    6: lambda p: np.rot90(p, 1),
    7: lambda p: p.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda p: np.rot90(p, -1),
}


def stored_pixels(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for ``upright`` under ``orientation`` (1-8)."""
    return np.ascontiguousarray(_STORE[orientation](upright))


def encoded(fmt: str, pixels: np.ndarray, **options: object) -> bytes:
    """``pixels`` saved as ``fmt`` (lossless where the format allows), with ``options``."""
    defaults: dict[str, object] = dict(_DEFAULT_OPTIONS.get(fmt, {}))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, _PILLOW_NAMES[fmt], **{**defaults, **options})
    return buffer.getvalue()


def oriented(fmt: str, orientation: int, upright: np.ndarray | None = None) -> bytes:
    """``upright`` (default ``upright_picture()``) stored as ``fmt`` under ``orientation``."""
    picture = upright_picture() if upright is None else upright
    stored = stored_pixels(picture, orientation)
    if fmt == "tiff":
        # A camera's TIFF carries the orientation in its first IFD.
        return encoded(fmt, stored, tiffinfo={274: orientation})
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encoded(fmt, stored, exif=exif.tobytes())


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 pictures of the same shape."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
