"""Image metadata from the file header (format, upright size, mode, EXIF orientation, sha256).

``read_metadata`` reads the header alone; ``verified_metadata``, what an upload must pass,
also proves the pixels decode, cheaply, after the pixel limit is checked.
"""

import hashlib
import io
import re
import struct
import warnings
from typing import Final

import pillow_heif
from PIL import Image, ImageFile, PngImagePlugin, TiffImagePlugin, UnidentifiedImageError

from catalog.errors import ImageTooLarge, UnreadableImage
from catalog.models import FORMATS, ImageFormat, ImageMeta

# Pillow's own bomb guard is a process-wide constant; the catalog enforces its own,
# configurable max_pixels below instead, so disable Pillow's to avoid two limits.
Image.MAX_IMAGE_PIXELS = None
pillow_heif.register_heif_opener()

# Pillow's name for a format -> the catalog's. Phones' JPEGs carry a second, smaller picture
# (MPO); JPEG's opener reports them as "MPO", yet every viewer shows them as the JPEG they are.
PILLOW_FORMATS: dict[str, ImageFormat] = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tiff",
    "BMP": "bmp",
    "AVIF": "avif",
    "HEIF": "heic",
}
EXIF_ORIENTATION_TAG = 0x0112
# MPO is not an opener of its own: JPEG's opener returns the multi-picture files.
_OPENERS: Final = [name for name in PILLOW_FORMATS if name != "MPO"]
_SUPPORTED = ", ".join(FORMATS)
# What Pillow's plugins raise on bytes they cannot parse or decode (AVIF's: RuntimeError).
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error)
_TRUNCATION = re.compile(r"truncat|end of (file|data|stream)|insufficient|premature", re.I)
_DETAIL_LENGTH = 200


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of the bytes."""
    return hashlib.sha256(data).hexdigest()


def read_metadata(data: bytes, *, max_pixels: int) -> ImageMeta:
    """Read format, upright size, mode and EXIF orientation from the header; never decode."""
    with _open(data) as image:
        return _header(image, data, max_pixels)


def verified_metadata(data: bytes, *, max_pixels: int) -> ImageMeta:
    """Read the header as read_metadata does, then refuse the image unless its pixels decode."""
    with _open(data) as image:
        meta = _header(image, data, max_pixels)
        _decode(image, meta.format, data)
        return meta


def _open(data: bytes) -> ImageFile.ImageFile:
    """The image's header parsed by the plugin of one of the catalog's formats."""
    if not data:
        raise UnreadableImage("empty image: zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=_OPENERS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels: {exc}") from None
    except UnidentifiedImageError:
        claimed = _claimed_format(data)
        if claimed is None:
            raise UnreadableImage(f"not an image (supported formats: {_SUPPORTED})") from None
        failure = _open_failure(claimed, data)
        raise _unreadable(PILLOW_FORMATS[claimed], "header", failure, data) from None
    except _READ_ERRORS as exc:
        claimed = _claimed_format(data)
        if claimed is None:
            raise UnreadableImage(f"corrupt or truncated image header: {_detail(exc)}") from None
        raise _unreadable(PILLOW_FORMATS[claimed], "header", exc, data) from None


def _header(image: ImageFile.ImageFile, data: bytes, max_pixels: int) -> ImageMeta:
    """The metadata of an opened image, refusing empty sizes and sizes over max_pixels."""
    width, height, orientation = _upright(image, data)
    if width < 1 or height < 1:
        raise UnreadableImage(f"image header declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    return ImageMeta(
        sha256=sha256_of(data),
        format=PILLOW_FORMATS[str(image.format)],
        mode=image.mode,
        width=width,
        height=height,
        exif_orientation=orientation,
        bytes=len(data),
    )


def _upright(image: ImageFile.ImageFile, data: bytes) -> tuple[int, int, int]:
    """Width and height as a person sees the photo, and the EXIF orientation the file carries.

    Orientation is applied here, once. Plugins disagree on what ``size`` means: pillow-heif
    applies the HEIF transformations itself and resets the EXIF tag to 1 (keeping the file's
    value as ``original_orientation``); Pillow's TIFF plugin reports an upright size in recent
    versions, so the stored size comes from the TIFF tags; the others report the stored size.
    """
    if image.format == "HEIF":
        original = image.info.get("original_orientation")
        orientation = _valid(original) if original is not None else _exif_orientation(image, data)
        return *image.size, orientation
    orientation = _exif_orientation(image, data)
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        tags = image.tag_v2
        width, height = tags[TiffImagePlugin.IMAGEWIDTH], tags[TiffImagePlugin.IMAGELENGTH]
    else:
        width, height = image.size
    if orientation >= 5:  # 5-8 are transposed: the photo is seen rotated by 90 degrees
        width, height = height, width
    return width, height, orientation


def _exif_orientation(image: Image.Image, data: bytes) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or nonsense."""
    try:
        if isinstance(image, PngImagePlugin.PngImageFile) and "exif" not in image.info:
            # An eXIf chunk may follow the pixel data, where getexif() would inflate every
            # pixel to reach it: walk the chunk headers instead.
            exif = Image.Exif()
            exif.load(_png_chunk(data, b"eXIf") or b"")
        else:
            exif = image.getexif()
        value = exif.get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not reject an otherwise fine photo
        return 1
    return _valid(value)


def _valid(orientation: object) -> int:
    """The orientation if it is one of EXIF's eight, else 1."""
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first chunk of this kind, found without decompressing anything."""
    offset = 8  # past the PNG signature
    while offset + 8 <= len(data):
        length, found = struct.unpack_from(">I4s", data, offset)
        if found == kind:
            return data[offset + 8 : offset + 8 + length]
        if found == b"IEND":
            break
        offset += 12 + length  # length, type, payload, CRC
    return None


def _decode(image: ImageFile.ImageFile, format: ImageFormat, data: bytes) -> None:
    """Decode the first frame, as cheaply as the format allows; UnreadableImage if it fails."""
    if format == "jpeg":
        # 1/8 scale skips most of the inverse DCT and "L" the colour conversion, but libjpeg
        # still reads every scan of every component, so a truncated stream fails all the same.
        image.draft("L", (1, 1))
    try:
        image.load()
    except _READ_ERRORS as exc:
        raise _unreadable(format, "pixels", exc, data) from None


def _unreadable(
    format: ImageFormat, part: str, exc: BaseException | None, data: bytes
) -> UnreadableImage:
    """Name what is wrong: truncated or corrupt, which format, which part, and Pillow's words."""
    detail = "" if exc is None else _detail(exc)
    cut_short = (
        isinstance(exc, EOFError | struct.error)
        or _TRUNCATION.search(detail) is not None
        or _declares_more_than(format, data)
    )
    problem = "truncated" if cut_short else "corrupt"
    action = "header cannot be read" if part == "header" else "pixels cannot be decoded"
    suffix = f" ({detail})" if detail else ""
    return UnreadableImage(f"{problem} {format} image: its {action}{suffix}")


def _declares_more_than(format: ImageFormat, data: bytes) -> bool:
    """Whether the container says the file is longer than it is (WebP, AVIF, HEIC).

    Their decoders refuse a cut-off file as unparseable; the declared lengths say why.
    """
    if format == "webp":  # RIFF: the size of everything after the first 8 bytes
        return len(data) >= 8 and struct.unpack_from("<I", data, 4)[0] + 8 > len(data)
    if format not in ("avif", "heic"):
        return False
    offset = 0  # ISO BMFF: top-level boxes, each starting with its own size
    while offset + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        if size == 1:  # a 64-bit size follows the box type
            if offset + 16 > len(data):
                return True
            (size,) = struct.unpack_from(">Q", data, offset + 8)
        elif size == 0:  # the last box, running to the end of the file
            return False
        if size < 8:
            return False  # nonsense, not a short file
        offset += size
    return offset != len(data)


def _detail(exc: BaseException) -> str:
    """The exception's message on one line, capped: it ends up in a response."""
    text = " ".join(str(exc).split())
    return text if len(text) <= _DETAIL_LENGTH else text[: _DETAIL_LENGTH - 1] + "…"


def _claimed_format(data: bytes) -> str | None:
    """The Pillow format whose signature the bytes start with, whether or not they parse."""
    prefix = data[:16]  # what Image.open hands to each plugin's check
    for name in _OPENERS:
        _, accept = Image.OPEN.get(name, (None, None))
        claimed = accept(prefix) if accept is not None else False
        if claimed and not isinstance(claimed, str):
            return name
    return None


def _open_failure(name: str, data: bytes) -> BaseException | None:
    """Why the plugin of this format refuses the bytes; Image.open only says it could not."""
    factory, _ = Image.OPEN[name]
    try:
        factory(io.BytesIO(data), "").close()
    except Exception as exc:  # any failure is the reason; the caller refuses the bytes anyway
        return exc
    return None
