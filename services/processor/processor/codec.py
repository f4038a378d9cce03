"""Bytes to pixels and back: the only module that knows image file formats.

Pillow reads every header (format, size, mode, EXIF orientation) and decodes
whatever OpenCV does not cover. Grey and colour JPEGs, the bulk of the traffic,
are decoded and JPEGs encoded by OpenCV: the same libjpeg-turbo with the same
settings, so the pixels and bytes are identical to Pillow's (tests prove it on
every sample), but OpenCV releases the GIL for the whole call, so jobs on two
threads use two cores, and its encoder skips Pillow's Python-level chunk loop.

Decoded pixels are C-contiguous uint8 arrays shaped HxW (L), HxWx2 (LA),
HxWx3 (RGB) or HxWx4 (RGBA), already turned upright by their EXIF orientation.
They may be read-only (Pillow hands its buffer over without a copy); operations are
pure and never write to their input.
"""

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from processor.errors import DarkroomError, ImageTooLarge, InvalidParameter, UnreadableImage
from processor.operations.alpha import has_alpha

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
# Output formats that keep an alpha channel; JPEG output is composited onto white.
ALPHA_FORMATS = frozenset({"png", "webp"})
MEDIA_TYPES = {fmt: f"image/{fmt}" for fmt in INPUT_FORMATS.values()}

EXIF_ORIENTATION = 0x0112
_MAX_SIDE = {"jpeg": 65_535, "webp": 16_383}

# JPEG modes OpenCV decodes to the same pixels as Pillow, by draft scale: OpenCV's
# REDUCED flags are libjpeg's scaled IDCT, as Pillow's draft mode is. CMYK and
# YCCK JPEGs (Adobe's inverted CMYK) stay with Pillow.
_CV_DECODE_FLAGS = {
    "L": {
        1: cv2.IMREAD_GRAYSCALE,
        2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
        4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
        8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    },
    # IMREAD_REDUCED_GRAYSCALE_n | IMREAD_COLOR_RGB: reduced, and RGB rather than BGR.
    "RGB": {
        1: cv2.IMREAD_COLOR_RGB,
        2: cv2.IMREAD_REDUCED_GRAYSCALE_2 | cv2.IMREAD_COLOR_RGB,
        4: cv2.IMREAD_REDUCED_GRAYSCALE_4 | cv2.IMREAD_COLOR_RGB,
        8: cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_COLOR_RGB,
    },
}


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


def _upright_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    """Return (width, height) as a person sees the photo: orientations 5-8 swap the sides."""
    width, height = image.size
    return (height, width) if orientation >= 5 else (width, height)


def probe(data: bytes) -> ImageInfo:
    """Describe an image from its header alone, without decoding pixels."""
    image, fmt = _open(data)
    orientation = _orientation(image)
    width, height = _upright_size(image, orientation)
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=image.mode,
        bytes=len(data),
        exif_orientation=orientation,
    )


class Source:
    """An image whose header is read and checked against the pixel limit, pixels not yet decoded.

    ``size`` is the (width, height) as a person sees it, after EXIF orientation, so a
    caller can plan a reduced-scale decode (see ``decode``) before any pixel is read.
    """

    def __init__(self, data: bytes, *, max_pixels: int) -> None:
        image, fmt = _open(data)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height} pixels, "
                f"over the limit of {max_pixels}"
            )
        self._data = data
        self._image = image
        self.format = fmt
        self.orientation = _orientation(image)
        self.size = _upright_size(image, self.orientation)

    def decoded_size(self, at_least: tuple[int, int] | None = None) -> tuple[int, int]:
        """Return the upright (width, height) ``decode(at_least=...)`` gives, without decoding."""
        if at_least is None or self.format != "jpeg":
            return self.size
        stored_width, stored_height = self._image.size
        swapped = self.orientation >= 5
        target = (at_least[1], at_least[0]) if swapped else at_least
        scale = _draft_scale(self._image.size, target)
        width, height = -(-stored_width // scale), -(-stored_height // scale)
        return (height, width) if swapped else (width, height)

    def decode_cost(self, at_least: tuple[int, int] | None = None) -> int:
        """Estimate the work of ``decode(at_least=...)`` in pixels decoded at full size.

        A full decode costs its pixel count. A reduced JPEG decode skips most of the
        inverse DCT and colour conversion but still entropy-decodes every block,
        which measures at about a third of a full decode.
        """
        width, height = self.size
        reduced_width, reduced_height = self.decoded_size(at_least)
        if (reduced_width, reduced_height) == (width, height):
            return width * height
        return width * height // 3 + reduced_width * reduced_height

    def decode(self, *, at_least: tuple[int, int] | None = None) -> Decoded:
        """Decode to an upright uint8 array, at a reduced scale when ``at_least`` allows it.

        ``at_least`` is the smallest upright (width, height) the caller needs; a JPEG
        is then decoded in draft mode, at the smallest of the scales 1/8, 1/4, 1/2
        whose result is at least that large in both sides (libjpeg scales in its
        inverse DCT, which is much cheaper than decoding everything and shrinking
        afterwards). Other formats decode at full size.
        """
        target = at_least if self.format == "jpeg" else None
        # Draft works on the stored (not yet upright) image.
        stored = target
        if target is not None and self.orientation >= 5:
            stored = (target[1], target[0])
        pixels = None
        if self.format == "jpeg":
            pixels = _decode_jpeg_with_opencv(self._data, self._image, stored)
        if pixels is None:
            pixels = _decode_with_pillow(self._image, self.format, stored)
        return Decoded(
            pixels=_upright(pixels, self.orientation), format=self.format, size=self.size
        )


def open_image(data: bytes, *, max_pixels: int) -> Source:
    """Read and check the header of ``data``: UnreadableImage, ImageTooLarge or a Source."""
    return Source(data, max_pixels=max_pixels)


def decode(data: bytes, *, max_pixels: int) -> Decoded:
    """Decode ``data`` at full size to an upright uint8 array."""
    return open_image(data, max_pixels=max_pixels).decode()


def _draft_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """Return the JPEG draft scale Pillow picks: the largest of 8, 4, 2 that keeps ``target``."""
    ratio = min(size[0] // max(target[0], 1), size[1] // max(target[1], 1))
    return next(scale for scale in (8, 4, 2, 1) if ratio >= scale)


def _decode_jpeg_with_opencv(
    data: bytes, image: Image.Image, stored: tuple[int, int] | None
) -> np.ndarray | None:
    """Decode a grey or colour JPEG with OpenCV, as stored; None when Pillow must do it.

    OpenCV returns None, rather than raising, for truncated or corrupt data it
    cannot decode; Pillow then decodes or names the problem.
    """
    flags = _CV_DECODE_FLAGS.get(image.mode)
    if flags is None or len(getattr(image, "tile", ())) != 1:
        return None
    scale = 1 if stored is None else _draft_scale(image.size, stored)
    buffer = np.frombuffer(data, np.uint8)
    try:
        pixels = cv2.imdecode(buffer, flags[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None
    expected = ((image.size[1] + scale - 1) // scale, (image.size[0] + scale - 1) // scale)
    if pixels is None or pixels.shape[:2] != expected:
        return None
    return pixels


def _decode_with_pillow(image: Image.Image, fmt: str, stored: tuple[int, int] | None) -> np.ndarray:
    """Decode any supported image with Pillow, as stored (not yet upright)."""
    try:
        if stored is not None:
            image.draft(image.mode if image.mode in ("L", "RGB") else None, stored)
        image.load()  # first frame only for GIF and multi-page TIFF
        return _to_array(image)
    except DarkroomError:
        raise
    except Exception as exc:  # truncated or corrupt data: OSError, SyntaxError, zlib errors...
        detail = str(exc) or type(exc).__name__
        problem = "truncated" if "truncated" in detail else "corrupt"
        raise UnreadableImage(f"{problem} {fmt} image: {detail}") from None


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright by their EXIF orientation (as Pillow's exif_transpose)."""
    if orientation == 1:
        return pixels
    if orientation == 2:
        out = cv2.flip(pixels, 1)
    elif orientation == 3:
        out = cv2.rotate(pixels, cv2.ROTATE_180)
    elif orientation == 4:
        out = cv2.flip(pixels, 0)
    elif orientation == 5:
        out = cv2.transpose(pixels)
    elif orientation == 6:
        out = cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        out = cv2.flip(cv2.transpose(pixels), -1)
    else:
        out = cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    # OpenCV drops a trailing channel axis of length 1; grey stays 2-D, colour keeps its axis.
    return np.ascontiguousarray(out.reshape(out.shape[:2] + pixels.shape[2:]))


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
    Pillow's default level 6 for a file a few percent larger. PNG and WebP stay
    with Pillow: OpenCV is no faster at either and does not write grey+alpha.
    """
    if fmt not in OUTPUT_FORMATS:
        raise InvalidParameter(f"format: must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}")
    height, width = pixels.shape[:2]
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(width, height) > limit:
        raise InvalidParameter(
            f"format: {fmt} holds at most {limit} pixels per side; this image is {width}x{height}"
        )
    alpha = has_alpha(pixels)
    if fmt == "jpeg":
        return _encode_jpeg(_flatten_alpha(pixels) if alpha else pixels, quality)
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    else:
        image = Image.fromarray(pixels)
        if image.mode in ("L", "LA"):  # WebP stores colour only
            image = image.convert("RGBA" if alpha else "RGB")
        image.save(buffer, "WEBP", quality=quality)
    return buffer.getvalue()


def _encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """Encode L or RGB as baseline JPEG with OpenCV: byte for byte what Pillow writes.

    Both drive libjpeg-turbo with 4:2:0 chroma, the standard tables scaled by
    ``quality``, no Huffman optimisation and a JFIF 1.01 header; OpenCV wants
    BGR, and the channel swap costs ~0.3 ms at 1080p.
    """
    image = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - libjpeg only fails on sizes encode() already refused
        raise InvalidParameter("format: jpeg encoding failed")
    return encoded.tobytes()
