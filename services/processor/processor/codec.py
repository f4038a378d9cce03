"""Bytes to pixels and back: the only module that knows image file formats (Pillow).

Decoded pixels are C-contiguous uint8 arrays shaped HxW (L), HxWx2 (LA),
HxWx3 (RGB) or HxWx4 (RGBA), already turned upright by their EXIF orientation.
They may be read-only (Pillow hands its buffer over without a copy); operations are
pure and never write to their input.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from processor.errors import DarkroomError, ImageTooLarge, InvalidParameter, UnreadableImage

# Pillow's own bomb guard warns or raises from Image.open, before we can give the
# request a proper 413; decode() checks the header's pixel count against the setting.
Image.MAX_IMAGE_PIXELS = None

INPUT_FORMATS = {
    "JPEG": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tiff",
    "BMP": "bmp",
}
OUTPUT_FORMATS = ("jpeg", "png", "webp")
MEDIA_TYPES = {fmt: f"image/{fmt}" for fmt in INPUT_FORMATS.values()}

EXIF_ORIENTATION = 0x0112
_MAX_SIDE = {"jpeg": 65_535, "webp": 16_383}


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about an image, with width and height as a person sees it."""

    format: str
    width: int
    height: int
    mode: str
    bytes: int
    exif_orientation: int


@dataclass(frozen=True)
class Decoded:
    """Upright pixels, the format they came from and the full upright size.

    ``size`` is the (width, height) of the image as stored, turned upright; the
    pixels are smaller than that when JPEG draft mode decoded at a reduced scale.
    """

    pixels: np.ndarray
    format: str
    size: tuple[int, int]

    @property
    def reduced(self) -> bool:
        """Whether the pixels were decoded at a reduced scale."""
        height, width = self.pixels.shape[:2]
        return (width, height) != self.size


SizeHint = Callable[[int, int], tuple[int, int] | None]


def _open(data: bytes) -> tuple[Image.Image, str]:
    """Open the header of ``data``; raise UnreadableImage unless it is a supported image."""
    if not data:
        raise UnreadableImage("empty body: expected image bytes")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnreadableImage("not an image: the bytes match no known image format") from None
    except Exception as exc:  # Pillow raises many types on corrupt headers.
        raise UnreadableImage(f"not a readable image: {exc}") from None
    fmt = INPUT_FORMATS.get(image.format or "")
    if fmt is None:
        accepted = ", ".join(INPUT_FORMATS.values())
        raise UnreadableImage(f"unsupported image format {image.format}; accepted: {accepted}")
    return image, fmt


def _orientation(image: Image.Image) -> int:
    """Return the EXIF orientation (1..8), 1 when absent or invalid."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # A broken EXIF block should not make the image unreadable.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe(data: bytes) -> ImageInfo:
    """Describe an image from its header alone, without decoding pixels."""
    image, fmt = _open(data)
    orientation = _orientation(image)
    width, height = image.size
    if orientation >= 5:  # 5-8 turn the photo a quarter, swapping its sides.
        width, height = height, width
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=image.mode,
        bytes=len(data),
        exif_orientation=orientation,
    )


def decode(data: bytes, *, max_pixels: int, size_hint: SizeHint | None = None) -> Decoded:
    """Decode to an upright uint8 array, checking the pixel count before loading pixels.

    ``size_hint`` receives the upright width and height and may return the
    smallest (width, height) the caller needs; a JPEG is then decoded in draft
    mode, at the smallest of the scales 1/8, 1/4, 1/2 whose result is at least
    that large in both sides (libjpeg scales in its inverse DCT, which is much
    cheaper than decoding everything and shrinking afterwards). Other formats
    ignore the hint.
    """
    image, fmt = _open(data)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    orientation = _orientation(image)
    upright = (height, width) if orientation >= 5 else (width, height)
    try:
        target = size_hint(*upright) if size_hint is not None and fmt == "jpeg" else None
        if target is not None:
            # Draft works on the stored (not yet upright) image.
            stored = (target[1], target[0]) if orientation >= 5 else target
            image.draft(image.mode if image.mode in ("L", "RGB") else None, stored)
        image.load()  # first frame only for GIF and multi-page TIFF
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
        pixels = _to_array(image)
    except DarkroomError:
        raise
    except Exception as exc:  # truncated or corrupt data: OSError, SyntaxError, zlib errors...
        detail = str(exc) or type(exc).__name__
        problem = "truncated" if "truncated" in detail else "corrupt"
        raise UnreadableImage(f"{problem} {fmt} image: {detail}") from None
    return Decoded(pixels=pixels, format=fmt, size=upright)


def _to_array(image: Image.Image) -> np.ndarray:
    """Normalise a Pillow image to L, LA, RGB or RGBA and return it as a uint8 array."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey: keep the high byte, so full white stays white.
        wide = np.asarray(image.convert("I") if mode != "I" else image).astype(np.int64)
        return np.ascontiguousarray((np.clip(wide, 0, 65_535) >> 8).astype(np.uint8))
    if mode == "F":
        values = np.asarray(image)
        return np.ascontiguousarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if mode in ("1", "L"):
        target = "L"
    elif mode in ("LA", "La"):
        target = "LA"
    elif mode == "P":
        target = "RGBA" if "transparency" in image.info else "RGB"
    elif mode in ("PA", "RGBA", "RGBa"):
        target = "RGBA"
    else:  # RGB, CMYK, YCbCr, LAB, HSV...
        target = "RGB"
    if mode != target:
        image = image.convert(target)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _flatten_alpha(pixels: np.ndarray) -> np.ndarray:
    """Composite LA or RGBA onto white, returning L or RGB."""
    colour = pixels[:, :, :-1].astype(np.uint32)
    alpha = pixels[:, :, -1:].astype(np.uint32)
    flat = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    out = flat.astype(np.uint8)
    return out[:, :, 0] if out.shape[2] == 1 else out


def encode(pixels: np.ndarray, fmt: str, *, quality: int) -> bytes:
    """Encode pixels as jpeg (baseline, alpha onto white), png (fast) or webp.

    ``quality`` applies to jpeg (libjpeg scale, 4:2:0 chroma, not progressive,
    not optimised: the fast path) and webp (lossy). PNG is lossless and ignores
    it; it uses zlib level 1, which on photos is about three times faster than
    Pillow's default level 6 for a file a few percent larger.
    """
    if fmt not in OUTPUT_FORMATS:
        raise InvalidParameter(f"format: must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}")
    height, width = pixels.shape[:2]
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(width, height) > limit:
        raise InvalidParameter(
            f"format: {fmt} holds at most {limit} pixels per side; this image is {width}x{height}"
        )
    has_alpha = pixels.ndim == 3 and pixels.shape[2] in (2, 4)
    buffer = io.BytesIO()
    if fmt == "jpeg":
        flat = _flatten_alpha(pixels) if has_alpha else pixels
        Image.fromarray(flat).save(buffer, "JPEG", quality=quality)
    elif fmt == "png":
        Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    else:
        image = Image.fromarray(pixels)
        if image.mode in ("L", "LA"):  # WebP stores colour only
            image = image.convert("RGBA" if has_alpha else "RGB")
        image.save(buffer, "WEBP", quality=quality)
    return buffer.getvalue()
