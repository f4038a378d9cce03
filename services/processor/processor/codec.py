"""Bytes to pixels and back: the only module that knows image file formats.

Formats in: JPEG (a phone's multi-picture JPEG, Pillow's "MPO", is a JPEG: its first
picture), PNG, WebP, GIF, TIFF, BMP, AVIF (Pillow's plugin) and HEIC/HEIF
(pillow-heif). Animated GIF, WebP, PNG and AVIF and multi-page TIFF give their first
frame. Formats out: JPEG, PNG, WebP and AVIF; HEIC cannot be written, so a job's
default output for HEIC input is JPEG (``default_output_format``).

Pillow reads every header (format, size, mode, EXIF orientation) and decodes
whatever OpenCV does not cover. Grey and colour JPEGs, the bulk of the traffic,
are decoded and JPEGs encoded by OpenCV: the same libjpeg-turbo with the same
settings, so the pixels and bytes are identical to Pillow's (tests prove it on
every sample), but OpenCV releases the GIL for the whole call, so jobs on two
threads use two cores, and its encoder skips Pillow's Python-level chunk loop.

Decoded pixels are C-contiguous uint8 arrays shaped HxW (L), HxWx2 (LA),
HxWx3 (RGB) or HxWx4 (RGBA), turned upright by their orientation exactly once:
Pillow's TIFF plugin, OpenCV's TIFF decoder and pillow-heif turn the image upright
themselves, every other decoder hands over the pixels as stored and the codec turns
them (``_DECODED_UPRIGHT``). 16-bit samples are reduced to 8 bits by rounding,
``round(v * 255 / 65535)``, not by keeping the high byte: 16-bit grey through
Pillow, 16-bit RGB(A) PNG and TIFF through OpenCV (Pillow would truncate them).
Pixels may be read-only (Pillow hands its buffer over without a copy); operations
are pure and never write to their input.

Metadata: output carries no EXIF unless the caller passes the input's
(``Source.exif_to_keep``), then with orientation 1, since the pixels are upright.
Colour (``colour.py``, LittleCMS through Pillow): by default an embedded ICC profile
is honoured by converting the decoded pixels to sRGB (``ColourPolicy`` "srgb"), so
every operation works in one known space and the untagged output is right on every
screen; CMYK is always converted. With "keep" the pixels stay in their profile and
``encode`` embeds it in the output (``Source.profile_to_keep``); JPEG gets it as
ICC_PROFILE APP2 segments added to OpenCV's output, where Pillow would put them.

AVIF is encoded by libaom at speed 9 (``AVIF_SPEED``) on one thread: 0.09-0.16 s
for a 1080p photo at quality 90 on one core of the reference machine, about WebP's
time. Pillow's default speed 6 takes 1.2-1.3 s and speed 8 0.3-0.4 s, for files
3-15 % smaller at the same quality setting.
"""

import io
import logging
import re
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import cv2
import numpy as np
import pillow_heif
from PIL import ExifTags, Image, TiffImagePlugin, UnidentifiedImageError

from processor.colour import cmyk_to_srgb, describe, embeddable, profile_problem, to_srgb
from processor.errors import DarkroomError, ImageTooLarge, InvalidParameter, UnreadableImage
from processor.operations.alpha import has_alpha

logger = logging.getLogger(__name__)

# Pillow's own bomb guard warns or raises from Image.open, before we can give the
# request a proper 413; decode() checks the header's pixel count against the setting.
Image.MAX_IMAGE_PIXELS = None

INPUT_FORMATS = {
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
OUTPUT_FORMATS = ("jpeg", "png", "webp", "avif")
# Output formats that keep an alpha channel; JPEG output is composited onto white.
ALPHA_FORMATS = frozenset({"png", "webp", "avif"})
MEDIA_TYPES = {fmt: f"image/{fmt}" for fmt in INPUT_FORMATS.values()}
# What ``metadata=`` on a job may say: strip the input's EXIF (default) or keep it.
MetadataPolicy = Literal["strip", "keep"]
ColourPolicy = Literal["srgb", "keep"]

Image.init()
pillow_heif.register_heif_opener()
# Image.open asks each plugin in turn whether it knows the file: the formats Darkroom
# reads go first, the busiest first, so a JPEG's header costs one question. AVIF goes
# before HEIF: both plugins accept files branded "mif1", and only the AVIF plugin moves
# on from a file it cannot decode.
_PLUGIN_ORDER = {name: rank for rank, name in enumerate(INPUT_FORMATS)}
Image.ID.sort(key=lambda name: _PLUGIN_ORDER.get(name, len(_PLUGIN_ORDER)))

EXIF_ORIENTATION = 0x0112
# Formats whose files can carry an orientation (EXIF, TIFF tag, HEIF irot/imir).
ORIENTABLE = frozenset({"jpeg", "png", "webp", "tiff", "heic", "avif"})
# The longest side each format holds; for AVIF, the longest libavif decodes by default.
_MAX_SIDE = {"jpeg": 65_535, "webp": 16_383, "avif": 32_768}
# libaom's speed 9 of 0-10 keeps a 1080p encode near 0.1 s on one core, 12 times
# faster than the default 6 (see the module docstring); one thread, as for OpenCV:
# the service's parallelism is jobs side by side.
AVIF_SPEED = 9
# A JPEG APP1 segment holds at most this many bytes of EXIF.
_JPEG_MAX_EXIF = 65_533
# The most profile bytes one APP2 segment holds, after its length, name and numbering.
_ICC_CHUNK = 65_519

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

# round(v * 255 / 65535) for every 16-bit v; never a tie, as 65535 = 255 * 257.
_ROUND_16_TO_8 = ((np.arange(65_536, dtype=np.uint32) * 255 + 32_767) // 65_535).astype(np.uint8)

_EXIF_IFD = ExifTags.IFD.Exif
_TAKEN = 0x9003  # DateTimeOriginal, in the Exif IFD
_TAKEN_OFFSET = 0x9011  # OffsetTimeOriginal
_PIXEL_WIDTH, _PIXEL_HEIGHT = 0xA002, 0xA003  # PixelXDimension, PixelYDimension
# A TIFF's first IFD describes its own raster too; only these of its tags are EXIF.
_TIFF_EXIF_TAGS = frozenset(
    {
        ExifTags.Base.ImageDescription,
        ExifTags.Base.Make,
        ExifTags.Base.Model,
        ExifTags.Base.Orientation,
        ExifTags.Base.XResolution,
        ExifTags.Base.YResolution,
        ExifTags.Base.ResolutionUnit,
        ExifTags.Base.Software,
        ExifTags.Base.DateTime,
        ExifTags.Base.Artist,
        ExifTags.Base.HostComputer,
        ExifTags.Base.Copyright,
        ExifTags.IFD.Exif,
        ExifTags.IFD.GPSInfo,
    }
)
_COLOUR_SPACES = {
    "1": "grey",
    "L": "grey",
    "LA": "grey",
    "La": "grey",
    "I": "grey",
    "F": "grey",
    "P": "RGB",
    "PA": "RGB",
    "RGB": "RGB",
    "RGBA": "RGB",
    "RGBa": "RGB",
    "RGBX": "RGB",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
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
    frames: int
    bit_depth: int
    colour_space: str
    icc_profile: str | None
    camera_make: str | None
    camera_model: str | None
    taken: str | None


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


# --- the header ------------------------------------------------------------------------------


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
        accepted = ", ".join(dict.fromkeys(INPUT_FORMATS.values()))
        raise UnreadableImage(f"unsupported image format {image.format}; accepted: {accepted}")
    return image, fmt


def _exif(image: Image.Image, fmt: str, data: bytes) -> Image.Exif:
    """Return the image's EXIF from the header alone, never decoding a pixel; empty if broken."""
    try:
        if fmt != "png":
            return image.getexif()
        if "exif" not in image.info and (chunk := _png_exif_chunk(data)) is not None:
            image.info["exif"] = b"Exif\x00\x00" + chunk  # as Pillow keeps it once loaded
        # PngImageFile.getexif decodes every pixel to look for an eXIf chunk after them;
        # the chunk is found above, so what the base class reads from the header suffices.
        return Image.Image.getexif(image)
    except Exception:  # A broken EXIF block should not make the image unreadable.
        return Image.Exif()


def _png_exif_chunk(data: bytes) -> bytes | None:
    """Return the payload of a PNG's eXIf chunk, which may follow the pixel data."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind == b"eXIf":
            return data[position + 8 : position + 8 + length]
        if kind == b"IEND":
            return None
        position += 12 + length
    return None


# --- orientation -----------------------------------------------------------------------------

# Formats whose decoders turn the image upright themselves, so the codec must not turn
# it again: Pillow's TIFF plugin (load_end runs exif_transpose; its size is upright
# from the header on), OpenCV's TIFF decoder (whatever the IMREAD flags) and
# pillow-heif (libheif applies irot/imir, then sets the EXIF orientation to 1 and keeps
# the file's in info["original_orientation"]). Pillow's JPEG, PNG, WebP and AVIF
# plugins and OpenCV's JPEG and PNG decoders (IGNORE_ORIENTATION, UNCHANGED) do not;
# for AVIF, Pillow reports the irot/imir transformation as the EXIF orientation.
_DECODED_UPRIGHT = frozenset({"tiff", "heic"})


def _orientation(image: Image.Image, fmt: str, exif: Image.Exif) -> int:
    """Return the orientation the file carries (1..8), 1 when absent or invalid."""
    if fmt not in ORIENTABLE:
        return 1
    if fmt == "heic":
        value = image.info.get("original_orientation") or 1
    else:
        value = exif.get(EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright_size(image: Image.Image, fmt: str, orientation: int) -> tuple[int, int]:
    """Return (width, height) as a person sees the photo: orientations 5-8 swap the sides."""
    width, height = image.size
    if fmt in _DECODED_UPRIGHT or orientation < 5:
        return width, height
    return height, width


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


# --- what /v1/info tells besides the size ----------------------------------------------------


def _frames(image: Image.Image, fmt: str) -> int:
    """Return the frames of an animation or pages of a file, 1 for a still."""
    if fmt == "jpeg":
        return 1  # an MPO's further pictures are previews or depth maps, not frames
    try:
        return int(getattr(image, "n_frames", 1))
    except Exception:  # A GIF is counted by walking its frames; a corrupt one stops that.
        return 1


def _bit_depth(image: Image.Image, fmt: str, data: bytes) -> int:
    """Return the bits per sample the file stores, from its header."""
    if fmt == "png" and data[25:26] != b"\x03":  # IHDR; a palette's colours are 8-bit
        return data[24]
    if isinstance(image, TiffImagePlugin.TiffImageFile) and image.tag_v2.get(262) != 3:
        bits = image.tag_v2.get(258)
        if isinstance(bits, tuple) and bits:
            return int(bits[0])
        if isinstance(bits, int):
            return bits
    if fmt == "heic":
        return int(image.info.get("bit_depth", 8))
    if fmt == "avif":
        return _avif_bit_depth(data)
    if image.mode.startswith("I;16"):
        return 16
    return {"1": 1, "I": 32, "F": 32}.get(image.mode, 8)


def _avif_bit_depth(data: bytes) -> int:
    """Return the bits per channel of an AVIF's "pixi" property, 8 when absent."""
    # The property sits in the meta box at the start; a box is size, type, then version,
    # flags, the channel count and each channel's bits.
    start = data.find(b"pixi", 0, 64 * 1024)
    if start < 4 or len(data) < start + 10 or not 1 <= data[start + 8] <= 4:
        return 8
    return data[start + 9]


def _colour_space(image: Image.Image) -> str:
    """Name the colour space of the stored samples: RGB, grey, CMYK, YCbCr, Lab..."""
    if image.mode.startswith("I;16"):
        return "grey"
    return _COLOUR_SPACES.get(image.mode, image.mode)


def _text(value: object) -> str | None:
    """Return an EXIF ASCII value as text, None when absent or blank."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 \t\r\n") or None


def _taken(exif: Image.Exif) -> str | None:
    """Return DateTimeOriginal as ISO 8601, with OffsetTimeOriginal when present."""
    try:
        details = exif.get_ifd(_EXIF_IFD)
    except Exception:  # A broken Exif IFD only loses what it holds.
        return None
    text = _text(details.get(_TAKEN))
    if text is None:
        return None
    try:
        taken = datetime.strptime(text, "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None
    offset = _text(details.get(_TAKEN_OFFSET))
    return taken + offset if offset and re.fullmatch(r"[+-]\d\d:\d\d", offset) else taken


def probe(data: bytes) -> ImageInfo:
    """Describe an image from its header alone, without decoding pixels."""
    image, fmt = _open(data)
    exif = _exif(image, fmt, data)
    orientation = _orientation(image, fmt, exif)
    width, height = _upright_size(image, fmt, orientation)
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=image.mode,
        bytes=len(data),
        exif_orientation=orientation,
        frames=_frames(image, fmt),
        bit_depth=_bit_depth(image, fmt, data),
        colour_space=_colour_space(image),
        icc_profile=describe(image.info.get("icc_profile") or None),
        camera_make=_text(exif.get(ExifTags.Base.Make)),
        camera_model=_text(exif.get(ExifTags.Base.Model)),
        taken=_taken(exif),
    )


def default_output_format(source_format: str) -> str:
    """Return the format a photo is written in by default: its own, JPEG for HEIC, else PNG."""
    if source_format in OUTPUT_FORMATS:
        return source_format
    return "jpeg" if source_format == "heic" else "png"


# --- decoding --------------------------------------------------------------------------------


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
        self._icc: bytes | None = image.info.get("icc_profile") or None
        self._exif = _exif(image, fmt, data)
        self._wide = _sixteen_bit_colour(image, fmt, data)
        self.format = fmt
        self.orientation = _orientation(image, fmt, self._exif)
        self.size = _upright_size(image, fmt, self.orientation)

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

    def decode(
        self, *, at_least: tuple[int, int] | None = None, colour: ColourPolicy = "srgb"
    ) -> Decoded:
        """Decode to an upright uint8 array, at a reduced scale when ``at_least`` allows it.

        ``at_least`` is the smallest upright (width, height) the caller needs; a JPEG
        is then decoded in draft mode, at the smallest of the scales 1/8, 1/4, 1/2
        whose result is at least that large in both sides (libjpeg scales in its
        inverse DCT, which is much cheaper than decoding everything and shrinking
        afterwards). Other formats decode at full size. With ``colour="srgb"`` the
        pixels are converted from the embedded profile to sRGB (after any reduction, so
        a thumbnail converts only its own pixels); with "keep" they stay as stored.
        """
        target = at_least if self.format == "jpeg" else None
        # Draft works on the stored (not yet upright) image.
        stored = target
        if target is not None and self.orientation >= 5:
            stored = (target[1], target[0])
        pixels = None
        if self.format == "jpeg":
            pixels = _decode_jpeg_with_opencv(self._data, self._image, stored)
        elif self._wide is not None:
            pixels = _decode_16_bit_with_opencv(self._data, self._wide, self._image.size)
        if pixels is None:
            pixels = _decode_with_pillow(self._image, self.format, stored, self._icc)
        if self.format not in _DECODED_UPRIGHT:
            pixels = _upright(pixels, self.orientation)
        if colour == "srgb" and self._icc is not None and self._image.mode != "CMYK":
            converted = to_srgb(pixels, self._icc)
            if converted is pixels:
                problem = profile_problem(self._icc, "grey" if pixels.ndim == 2 else "rgb")
                if problem is not None:
                    logger.warning("colour profile left unapplied: %s", problem)
            pixels = converted
        size = self.size if target is not None else (pixels.shape[1], pixels.shape[0])
        return Decoded(pixels=pixels, format=self.format, size=size)

    def profile_to_keep(self) -> bytes | None:
        """Return the embedded ICC profile, to embed in an output whose colours are kept."""
        return self._icc

    def exif_to_keep(self, size: tuple[int, int]) -> bytes | None:
        """Return the input's EXIF for an output of ``size``, upright; None when it has none.

        The orientation becomes 1, the pixel dimensions ``size``, a TIFF keeps only
        its EXIF tags (not those describing its raster), and the thumbnail (IFD1) is
        left out: it shows the original, not the result. EXIF that Pillow cannot
        parse is left out too.
        """
        try:
            exif = Image.Exif()
            exif.load(self._image.info.get("exif") or self._exif.tobytes())
            if not exif:
                return None
            if self.format == "tiff":
                for tag in set(exif) - _TIFF_EXIF_TAGS:
                    del exif[tag]
            exif[EXIF_ORIENTATION] = 1
            details = exif.get_ifd(_EXIF_IFD)
            if _PIXEL_WIDTH in details or _PIXEL_HEIGHT in details:
                details[_PIXEL_WIDTH], details[_PIXEL_HEIGHT] = size
            return exif.tobytes()
        except Exception:  # Broken EXIF: the output goes without, as it does by default.
            return None


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
    cannot decode; Pillow then decodes or names the problem. Of an MPO it decodes
    the first picture, as Pillow does.
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


def _sixteen_bit_colour(image: Image.Image, fmt: str, data: bytes) -> str | None:
    """Say whether OpenCV decodes the image: "colour" or "grey+alpha" 16-bit, else None.

    Pillow unpacks 16-bit RGB(A) PNG and TIFF to 8 bits by keeping the high byte, and
    16-bit grey+alpha PNG to RGBA the same way; 16-bit grey it keeps whole (I;16).
    """
    if fmt == "png" and data[24:25] == b"\x10":
        return {2: "colour", 6: "colour", 4: "grey+alpha"}.get(data[25])
    if not isinstance(image, TiffImagePlugin.TiffImageFile):
        return None
    tags = image.tag_v2
    bits, samples = tags.get(258), tags.get(277, 1)
    # Associated (premultiplied) or unspecified extra samples are not alpha to keep as is.
    extra = tags.get(338)
    if (
        tags.get(262) == 2
        and tags.get(284, 1) == 1
        and isinstance(bits, tuple)
        and set(bits) == {16}
        and tags.get(339, (1,)) in (1, (1,) * samples)
        and (samples == 3 or (samples == 4 and extra in (None, 2, (2,))))
    ):
        return "colour"
    return None


def _decode_16_bit_with_opencv(data: bytes, kind: str, size: tuple[int, int]) -> np.ndarray | None:
    """Decode a 16-bit PNG or TIFF with OpenCV and round it to 8 bits; None if it cannot.

    A TIFF comes out upright (OpenCV applies its orientation), a PNG as stored: each
    as Pillow's ``size`` says.
    """
    try:
        wide = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if (
        wide is None
        or wide.dtype != np.uint16
        or wide.shape[:2] != (size[1], size[0])
        or wide.ndim != 3
        or wide.shape[2] not in (3, 4)
    ):
        return None
    narrow = _round_to_8_bits(wide)
    if kind == "grey+alpha":  # OpenCV repeats the grey in B, G and R
        return np.ascontiguousarray(narrow[:, :, (0, 3)])
    code = cv2.COLOR_BGR2RGB if narrow.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    return np.ascontiguousarray(cv2.cvtColor(narrow, code))


def _round_to_8_bits(wide: np.ndarray) -> np.ndarray:
    """Reduce 16-bit samples to 8 bits by rounding: round(v * 255 / 65535)."""
    narrow: np.ndarray = _ROUND_16_TO_8[wide]
    return narrow


def _decode_with_pillow(
    image: Image.Image, fmt: str, stored: tuple[int, int] | None, icc: bytes | None = None
) -> np.ndarray:
    """Decode any supported image with Pillow (upright only where it turns it itself)."""
    try:
        if stored is not None:
            image.draft(image.mode if image.mode in ("L", "RGB") else None, stored)
        image.load()  # first frame only for animations and multi-page TIFF
        return _to_array(image, icc)
    except DarkroomError:
        raise
    except Exception as exc:  # truncated or corrupt data: OSError, SyntaxError, zlib errors...
        detail = str(exc) or type(exc).__name__
        problem = "truncated" if "truncated" in detail else "corrupt"
        raise UnreadableImage(f"{problem} {fmt} image: {detail}") from None


def _to_array(image: Image.Image, icc: bytes | None = None) -> np.ndarray:
    """Normalise a Pillow image to L, LA, RGB or RGBA and return it as a uint8 array.

    CMYK becomes sRGB through its profile ``icc`` when it has one (``cmyk_to_srgb``).
    """
    mode = image.mode
    if mode == "CMYK":
        return cmyk_to_srgb(np.asarray(image), icc)
    if mode.startswith("I;16"):
        return _round_to_8_bits(np.asarray(image))
    if mode == "I":
        return _round_to_8_bits(np.clip(np.asarray(image), 0, 65_535).astype(np.uint16))
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


# --- encoding --------------------------------------------------------------------------------


def _flatten_alpha(pixels: np.ndarray) -> np.ndarray:
    """Composite LA or RGBA onto white, returning L or RGB."""
    colour = pixels[:, :, :-1].astype(np.uint32)
    alpha = pixels[:, :, -1:].astype(np.uint32)
    flat = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    out = flat.astype(np.uint8)
    return out[:, :, 0] if out.shape[2] == 1 else out


def encode(
    pixels: np.ndarray,
    fmt: str,
    *,
    quality: int,
    exif: bytes | None = None,
    icc: bytes | None = None,
) -> bytes:
    """Encode pixels as jpeg (baseline, alpha onto white), png (fast), webp or avif.

    ``quality`` applies to jpeg (libjpeg scale, 4:2:0 chroma, not progressive,
    not optimised: the fast path), webp (lossy) and avif (libaom at speed
    ``AVIF_SPEED``, 4:2:0, one thread). PNG is lossless and ignores it; it uses zlib
    level 1, which on photos is about three times faster than Pillow's default
    level 6 for a file a few percent larger. PNG, WebP and AVIF stay with Pillow:
    OpenCV is no faster at PNG or WebP and does not write grey+alpha. ``exif``
    (``Source.exif_to_keep``) is written into the file; without it there is none.
    ``icc`` (``Source.profile_to_keep``) is embedded when it fits what is written (an
    RGB profile with colour, a grey one with grey); without it the output is sRGB.
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
        flat = _flatten_alpha(pixels) if alpha else pixels
        content = _encode_jpeg(flat, quality)
        profile = embeddable(icc, flat)
        if profile is not None:
            content = _with_segments(content, _icc_segments(profile))
        if exif is not None:
            content = _with_segments(content, [_exif_segment(exif)])
        return content
    options: dict[str, object] = {} if exif is None else {"exif": exif}
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if fmt == "webp" and image.mode in ("L", "LA"):  # WebP stores colour only
        image = image.convert("RGBA" if alpha else "RGB")
    if fmt == "avif" and image.mode == "LA":  # AVIF keeps grey (4:0:0), not grey with alpha
        image = image.convert("RGBA")
    # Checked on what is written: a grey profile does not fit the RGB WebP makes of grey.
    profile = embeddable(icc, np.asarray(image)) if icc else None
    if profile is not None:
        options["icc_profile"] = profile
    if fmt == "png":
        image.save(buffer, "PNG", compress_level=1, **options)
    elif fmt == "webp":
        image.save(buffer, "WEBP", quality=quality, **options)
    else:
        image.save(buffer, "AVIF", quality=quality, speed=AVIF_SPEED, max_threads=1, **options)
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


def _exif_segment(exif: bytes) -> bytes:
    """``exif`` as a JPEG APP1 segment; InvalidParameter when it is over JPEG's limit."""
    if len(exif) > _JPEG_MAX_EXIF:
        raise InvalidParameter(
            f"metadata: the input's EXIF is {len(exif)} bytes, over JPEG's limit of "
            f"{_JPEG_MAX_EXIF}; use metadata=strip or another format"
        )
    return b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif


def _icc_segments(icc: bytes) -> list[bytes]:
    """``icc`` as ICC_PROFILE APP2 segments, split as the ICC specification says."""
    chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
    return [
        b"\xff\xe2"
        + (len(chunk) + 16).to_bytes(2, "big")
        + b"ICC_PROFILE\0"
        + bytes([number, len(chunks)])
        + chunk
        for number, chunk in enumerate(chunks, start=1)
    ]


def _with_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    """Insert ``segments`` right after the JFIF header (APP0), where Pillow writes them."""
    position = 2
    if jpeg[2:4] == b"\xff\xe0":  # APP0 (JFIF): its length counts its own two bytes
        position = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:position] + b"".join(segments) + jpeg[position:]
