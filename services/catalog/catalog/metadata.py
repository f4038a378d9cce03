"""Image metadata from the file header (format, upright size, mode, EXIF orientation, sha256).

``read_metadata`` reads the header alone; ``verified_metadata``, what an upload must pass,
also proves the pixels decode, cheaply, after the pixel limit is checked, and reads what a
photo says of itself (``PhotoMeta``): EXIF date, camera, lens and GPS, and from the same
reduced decode its colour class and perceptual hash.
"""

import dataclasses
import hashlib
import io
import math
import re
import struct
import warnings
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageFile, PngImagePlugin, TiffImagePlugin, UnidentifiedImageError

from catalog.errors import ImageTooLarge, UnreadableImage
from catalog.fingerprint import perceptual_hash
from catalog.models import FORMATS, ColourClass, ImageFormat, ImageMeta, Location, PhotoMeta

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
    """Read the header, refuse the image unless its pixels decode, and read its PhotoMeta.

    The PhotoMeta comes from EXIF and the pixels decoded for the check (a JPEG's at 1/8
    scale), never from a second decode.
    """
    with _open(data) as image:
        meta = _header(image, data, max_pixels)
        _decode(image, meta.format, data)
        photo = _photo(image, data, meta.format, meta.exif_orientation)
        return dataclasses.replace(meta, photo=photo)


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


def _exif(image: Image.Image, data: bytes) -> Image.Exif:
    """The image's EXIF (empty when it has none); raises on a broken block."""
    if isinstance(image, PngImagePlugin.PngImageFile) and "exif" not in image.info:
        # An eXIf chunk may follow the pixel data, where getexif() would inflate every
        # pixel to reach it: walk the chunk headers instead.
        exif = Image.Exif()
        exif.load(_png_chunk(data, b"eXIf") or b"")
        return exif
    return image.getexif()


def _exif_orientation(image: Image.Image, data: bytes) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or nonsense."""
    try:
        value = _exif(image, data).get(EXIF_ORIENTATION_TAG, 1)
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
        # 1/8 scale skips most of the inverse DCT (the colour conversion of 1/64 of the
        # pixels is what colour costs), but libjpeg still reads every scan of every
        # component, so a truncated stream fails all the same.
        image.draft("RGB", (1, 1))
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


# EXIF tags (the EXIF 2.32 / 3.0 numbers), in IFD0, the Exif IFD and the GPS IFD.
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATE_TIME_ORIGINAL, _OFFSET_TIME, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9010, 0x9011
_LENS_MODEL = 0xA434
_GPS_LATITUDE_REF, _GPS_LATITUDE, _GPS_LONGITUDE_REF, _GPS_LONGITUDE = 1, 2, 3, 4
_EXIF_TIME = re.compile(r"(\d{4}):(\d\d):(\d\d)[ T](\d\d):(\d\d):(\d\d)")
_EXIF_OFFSET = re.compile(r"[+-](?:[01]\d|2[0-3]):[0-5]\d")
_TEXT_LENGTH = 200
# About the longest side of the pixels the hash is computed from (the decode is box-reduced
# to it, keeping the shorter side at least _HASH_SIDE, the hash's own 32x32), and of the
# pixels colour is computed from: a thousand pixels vote as well as all of them.
_SMALL_SIDE = 64
_HASH_SIDE = 32
_COLOUR_SIDE = 32
# Modes Image.reduce takes as they are; any other is converted to RGB first.
_REDUCIBLE = frozenset({"RGB", "RGBA", "L", "LA"})
# Pillow's transposition for each EXIF orientation that is not upright.
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_HUES: Final[tuple[ColourClass, ...]] = (
    "red", "orange", "yellow", "lime", "green", "spring",
    "cyan", "azure", "blue", "violet", "magenta", "rose",
)  # fmt: skip
# Chroma (max - min of R, G, B, 0..1) below which a pixel counts as grey, and the mean
# chroma of a whole image below which it is classed by lightness alone.
CHROMATIC = 0.15
COLOURFUL = 0.08
DARK, LIGHT = 0.2, 0.8

RGBArray = npt.NDArray[np.uint8]


def _photo(
    image: ImageFile.ImageFile, data: bytes, format: ImageFormat, orientation: int
) -> PhotoMeta:
    """EXIF date, camera, lens and GPS, and colour and pHash of the decoded pixels."""
    try:
        exif = _exif(image, data)
    except Exception:  # a broken EXIF block must not reject an otherwise fine photo
        exif = Image.Exif()
    small = _small(image, format, orientation)
    factor = max(1, max(small.size) // _COLOUR_SIDE)
    colour, dominant = colour_class(np.asarray(small.reduce(factor) if factor > 1 else small))
    gray = np.asarray(small.convert("L"))
    location = _location(exif)
    return PhotoMeta(
        taken_at=_taken_at(exif),
        camera_make=_text(exif.get(_MAKE)),
        camera_model=_text(exif.get(_MODEL)),
        lens=_text(_ifd(exif, _EXIF_IFD).get(_LENS_MODEL)),
        has_location=location is not None,
        location=location,
        dominant_colour=dominant,
        colour=colour,
        phash=f"{perceptual_hash(gray):016x}",
    )


def _small(image: ImageFile.ImageFile, format: ImageFormat, orientation: int) -> Image.Image:
    """The decoded frame as upright RGB, box-reduced to about _SMALL_SIDE on its longer side."""
    frame: Image.Image = image if image.mode in _REDUCIBLE else _eight_bit(image)
    factor = max(1, min(max(frame.size) // _SMALL_SIDE, min(frame.size) // _HASH_SIDE))
    if factor > 1:
        frame = frame.reduce(factor)
    if frame.mode != "RGB":
        frame = frame.convert("RGB")
    # pillow-heif and Pillow's TIFF plugin hand out upright pixels already.
    if format not in ("heic", "tiff") and orientation in _UPRIGHT:
        frame = frame.transpose(_UPRIGHT[orientation])
    return frame


def _eight_bit(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, or as L for 16- and 32-bit grayscale.

    Pillow's own conversion clips those to white: I;16 is scaled down by 257, I and F by
    their largest value.
    """
    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return image.convert("RGB")
    values = np.asarray(image).astype(np.float32)
    top = float(values.max()) if values.size else 0.0
    scale = 257.0 if image.mode.startswith("I;16") else max(top / 255, 1.0)
    return Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8))  # 2-D uint8: L


def colour_class(rgb: RGBArray) -> tuple[ColourClass, str]:
    """The colour class and dominant colour (#rrggbb) of an RGB array (height, width, 3).

    Each pixel's chroma is max - min of its R, G, B (0..1) and its hue the HSV hue. When the
    mean chroma of the image, counting pixels under CHROMATIC as 0, is under COLOURFUL, the
    image is neutral: black, grey or white by its mean lightness ((max + min) / 2) below
    DARK, between, or above LIGHT, and the dominant colour is its mean. Otherwise the hues
    of the chromatic pixels vote, each weighted by its chroma, into 12 bins 30 degrees wide
    centred on red (0), orange (30) ... rose (330); the heaviest bin is the class and the
    chroma-weighted mean of its pixels the dominant colour.
    """
    pixels = rgb.reshape(-1, 3).astype(np.float32) / 255
    red, green, blue = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    # Elementwise over the three channels: much faster than a max along a 3-wide axis.
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    chroma = high - low
    weight = np.where(chroma >= CHROMATIC, chroma, 0)
    if pixels.shape[0] == 0 or float(weight.mean()) < COLOURFUL:
        lightness = float(((high + low) / 2).mean()) if pixels.shape[0] else 0.0
        neutral: ColourClass = (
            "black" if lightness < DARK else "white" if lightness > LIGHT else "grey"
        )
        return neutral, _hex(pixels.mean(axis=0) if pixels.shape[0] else np.zeros(3))
    safe = np.where(chroma > 0, chroma, 1)
    hue = (
        np.where(
            high == red,
            ((green - blue) / safe) % 6,
            np.where(high == green, (blue - red) / safe + 2, (red - green) / safe + 4),
        )
        * 60
    )
    bins = (((hue + 15) % 360) // 30).astype(np.intp)
    votes = np.bincount(bins, weights=weight, minlength=12)
    winner = int(votes.argmax())
    chosen = weight * (bins == winner)
    mean = (pixels * chosen[:, None]).sum(axis=0) / chosen.sum()
    return _HUES[winner], _hex(mean)


def _hex(rgb: npt.NDArray[Any]) -> str:
    """#rrggbb of an RGB triple in 0..1."""
    red, green, blue = (min(255, max(0, round(float(v) * 255))) for v in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _ifd(exif: Image.Exif, tag: int) -> dict[int, object]:
    """One sub-IFD of the EXIF (the Exif or the GPS IFD), empty when missing or broken."""
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # a broken IFD only loses what it held
        return {}


def _text(value: object) -> str | None:
    """An EXIF string trimmed, without NULs or control characters; None when empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", value).split())
    return text[:_TEXT_LENGTH] or None


def _taken_at(exif: Image.Exif) -> str | None:
    """DateTimeOriginal as YYYY-MM-DDTHH:MM:SS, with OffsetTimeOriginal (or OffsetTime)."""
    tags = _ifd(exif, _EXIF_IFD)
    text = _text(tags.get(_DATE_TIME_ORIGINAL))
    match = _EXIF_TIME.match(text or "")
    if match is None:
        return None
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders
        return None
    offset = next(
        (
            text
            for tag in (_OFFSET_TIME_ORIGINAL, _OFFSET_TIME)
            if (text := _text(tags.get(tag))) is not None and _EXIF_OFFSET.fullmatch(text)
        ),
        "",
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + offset


def _location(exif: Image.Exif) -> Location | None:
    """The GPS position in decimal degrees, or None when absent or out of range."""
    gps = _ifd(exif, _GPS_IFD)
    lat = _degrees(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), "S")
    lon = _degrees(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), "W")
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None
    return Location(lat=round(lat, 7), lon=round(lon, 7))


def _degrees(value: object, ref: object, negative: str) -> float | None:
    """Degrees, minutes, seconds (rationals) as signed decimal degrees."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    total = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(total):
        return None
    return -total if _text(ref) == negative else total
