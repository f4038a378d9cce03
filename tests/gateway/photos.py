"""Photos made for the find tests: known colours and structure, EXIF written with Pillow."""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# EXIF tags: the main IFD's make and model and pointers, the Exif IFD's date and lens, GPS.
MAKE, MODEL, EXIF_IFD, GPS_IFD = 0x010F, 0x0110, 0x8769, 0x8825
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, LENS_MODEL = 0x9003, 0x9011, 0xA434


@dataclass(frozen=True)
class Gps:
    """A position in degrees, written as EXIF writes it (degrees, minutes, seconds and a side)."""

    lat: float
    lon: float


def exif_photo(
    rgb: tuple[int, int, int],
    *,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    gps: Gps | None = None,
) -> bytes:
    """A JPEG of colour ``rgb`` in light and shade: smooth blotches drawn from ``seed``.

    The blotches give the perceptual hash a structure of its own that survives resizing:
    photos of different seeds are far apart, whatever their colours. ``taken`` is EXIF's
    "YYYY:MM:DD HH:MM:SS".
    """
    width, height = size
    coarse = np.random.default_rng(seed).uniform(0.45, 1.0, (6, 8))
    field = Image.fromarray((coarse * 255).astype(np.uint8), "L").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    shade = np.asarray(field, dtype=float)[..., None] / 255
    pixels = shade * np.array(rgb, dtype=float)
    image = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    details = exif.get_ifd(EXIF_IFD)
    if taken:
        details[DATE_TIME_ORIGINAL] = taken
    if offset:
        details[OFFSET_TIME_ORIGINAL] = offset
    if lens:
        details[LENS_MODEL] = lens
    if gps:
        position = exif.get_ifd(GPS_IFD)
        position.update(
            {
                1: "N" if gps.lat >= 0 else "S",
                2: degrees(abs(gps.lat)),
                3: "E" if gps.lon >= 0 else "W",
                4: degrees(abs(gps.lon)),
            }
        )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def degrees(value: float) -> tuple[float, float, float]:
    """Decimal degrees as EXIF's (degrees, minutes, seconds)."""
    whole = int(value)
    minutes = (value - whole) * 60
    return (float(whole), float(int(minutes)), round((minutes - int(minutes)) * 60, 2))


def reencoded(data: bytes, *, scale: float = 0.5, quality: int = 70) -> bytes:
    """The same photo smaller and more compressed: a near-duplicate of it."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    smaller = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    smaller.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
