"""Embedded ICC profiles: pixels to sRGB, the one place that knows colour spaces.

Pure functions on the codec's uint8 arrays (HxW grey, HxWx2 grey + alpha, HxWx3 RGB,
HxWx4 RGBA, and HxWx4 CMYK for ``cmyk_to_srgb``), given the profile's bytes as the
file carried them; no file format is known here. Alpha passes through unchanged.

Conversion: LittleCMS through ``PIL.ImageCms``, relative colorimetric intent with
black point compensation. Nearly every tagged photo carries a matrix/TRC profile
(Display P3, Adobe RGB, ProPhoto), which has no perceptual table, so LittleCMS
renders any intent colorimetrically anyway; for table-based profiles (CMYK press
profiles) relative colorimetric keeps every in-gamut colour where it is and clips the
rest, and black point compensation maps the paper's deepest black to sRGB black
rather than a washed-out grey: Photoshop's default for the same reason.

Speed: LittleCMS spends ~14 ns a pixel on 8-bit RGB (~30 ms for 1080p here). For a
matrix/TRC RGB profile the same maths runs on OpenCV in a fifth of that: a LUT to
16-bit linear light, a 3x3 ``cv2.transform`` that clips as it saturates, and a 16-bit
LUT back to sRGB (OpenCV 5; numpy's ``take`` with OpenCV 4, about twice as slow). It
is checked against LittleCMS on a cube of colours before a profile uses it, and
LittleCMS does the work whenever they differ by more than one code value. Grey pixels
need only a 256-entry LUT, read off LittleCMS's own transform. The functions are
size-agnostic: a caller that shrinks on load converts the reduced pixels.

Profiles that cannot be used (unreadable, an unsupported colour space, a profile
that does not describe the pixels) never fail a request: the pixels stay as they
are, and ``profile_problem`` says why, for the caller to log. What is learnt about a
profile is cached under a digest of its bytes, for ``PROFILE_CACHE_SIZE`` profiles.

LittleCMS transforms are built with ``NOCACHE``, so they keep no one-pixel cache
between calls and one cached transform serves every job thread at once; Pillow and
OpenCV release the GIL while they convert.
"""

import hashlib
import io
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
from PIL import Image, ImageCms

from processor.operations.alpha import colour_of, on_colour

ColourKind = Literal["grey", "rgb", "cmyk"]
Converter = Callable[[np.ndarray], np.ndarray]
KINDS: Final[tuple[ColourKind, ...]] = ("grey", "rgb", "cmyk")

INTENT: Final = ImageCms.Intent.RELATIVE_COLORIMETRIC
FLAGS: Final = ImageCms.Flags.BLACKPOINTCOMPENSATION | ImageCms.Flags.NOCACHE
PROFILE_CACHE_SIZE: Final = 32
# A converted colour may differ from LittleCMS's, or a profile from sRGB, by this many
# code values and still count as the same: both round, so one code is rounding.
SAME_CODES: Final = 1

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_PIL_MODE: dict[ColourKind, str] = {"grey": "L", "rgb": "RGB", "cmyk": "CMYK"}
# The colour space each pixel kind needs its profile to be in (ICC header bytes 16-19).
_SPACE: dict[ColourKind, str] = {"grey": "GRAY", "rgb": "RGB", "cmyk": "CMYK"}


def _srgb_colorants() -> np.ndarray:
    """LittleCMS's sRGB colorants in the D50 PCS: the linear sRGB to XYZ matrix."""
    profile = _SRGB.profile
    colorants = (profile.red_colorant, profile.green_colorant, profile.blue_colorant)
    return np.array([xyz for xyz, _ in filter(None, colorants)]).T


_SRGB_COLORANTS = _srgb_colorants()


def _linear_to_srgb() -> np.ndarray:
    """16-bit linear light (65535 = 1.0) to 8-bit sRGB, rounded: the fast path's last step."""
    linear = np.arange(65_536) / 65_535
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    table: np.ndarray = np.rint(255 * encoded).astype(np.uint8)
    return table


_LINEAR_TO_SRGB = _linear_to_srgb()


def _probe_colours() -> np.ndarray:
    """A 1xNx3 image of a 17-step RGB cube, so a transform is checked on every region."""
    steps = np.linspace(0, 255, 17).round().astype(np.uint8)
    cube = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    return np.ascontiguousarray(cube.reshape(1, -1, 3))


_PROBE = _probe_colours()
_RAMP = np.arange(256, dtype=np.uint8).reshape(1, 256)


def _has_16_bit_lut() -> bool:
    """Whether ``cv2.LUT`` takes 16-bit input (OpenCV 5); numpy looks the values up otherwise."""
    try:
        cv2.LUT(np.zeros((1, 1), np.uint16), _LINEAR_TO_SRGB)
    except cv2.error:
        return False
    return True


_CV_LUT_16 = _has_16_bit_lut()


@dataclass(frozen=True)
class _MatrixShaper:
    """A matrix/TRC RGB profile's maths: 8-bit to 16-bit linear LUTs and a matrix to sRGB."""

    # 256 entries, or 256x1x3 when the channels' curves differ; 65535 = 1.0.
    to_linear: np.ndarray
    matrix: np.ndarray  # 3x3 float32, linear profile RGB to linear sRGB

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        # uint16 saturates, which is the per-channel clip of out-of-gamut colours.
        # (In place, cv2.transform runs at half the speed.)
        linear: np.ndarray = cv2.transform(cv2.LUT(rgb, self.to_linear), self.matrix)
        if _CV_LUT_16:
            encoded: np.ndarray = cv2.LUT(linear, _LINEAR_TO_SRGB)
            return encoded
        return np.take(_LINEAR_TO_SRGB, linear)


@dataclass(frozen=True)
class _Plan:
    """What a profile does to each kind of pixels: a conversion, nothing (None), or a problem."""

    description: str | None
    space: str
    convert: dict[ColourKind, Converter | None]
    problems: dict[ColourKind, str]
    is_srgb: bool = False


def _transform(profile: ImageCms.ImageCmsProfile, kind: ColourKind) -> ImageCms.ImageCmsTransform:
    """A LittleCMS transform from ``profile`` to sRGB for pixels of ``kind``."""
    return ImageCms.buildTransform(
        profile, _SRGB, _PIL_MODE[kind], "RGB", renderingIntent=INTENT, flags=FLAGS
    )


def _littlecms(transform: ImageCms.ImageCmsTransform, mode: str) -> Converter:
    """Convert an array of Pillow ``mode`` to an sRGB array with a LittleCMS transform."""

    def convert(pixels: np.ndarray) -> np.ndarray:
        height, width = pixels.shape[:2]
        if mode == "RGB":
            image = Image.fromarray(pixels)
            transform.apply_in_place(image)
        else:
            source = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
            image = transform.apply(source)
        return np.asarray(image)

    return convert


def _grey_lut(convert: Converter, kind: ColourKind) -> np.ndarray | None:
    """The 256-entry sRGB grey each grey level becomes, or None when greys do not stay grey."""
    ramp = _RAMP if kind == "grey" else np.repeat(_RAMP[:, :, None], 3, axis=2)
    rgb = convert(np.ascontiguousarray(ramp)).astype(np.int16)[0]
    if int(np.abs(rgb - rgb[:, 1:2]).max()) > SAME_CODES:
        return None
    lut: np.ndarray = np.ascontiguousarray(rgb[:, 1].astype(np.uint8))
    return lut


def _lut_converter(lut: np.ndarray) -> Converter:
    """Apply a 256-entry grey LUT."""

    def convert(grey: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.LUT(grey, lut)
        return out

    return convert


def _tags(icc: bytes) -> dict[bytes, bytes]:
    """The tag table of an ICC profile: signature to tag data."""
    (count,) = struct.unpack_from(">I", icc, 128)
    tags = {}
    for number in range(count):
        signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * number)
        tags[signature] = icc[offset : offset + size]
    return tags


def _s15f16(data: bytes, offset: int, count: int) -> np.ndarray:
    return np.array(struct.unpack_from(f">{count}i", data, offset), np.float64) / 65_536


def _curve(tag: bytes) -> np.ndarray:
    """Evaluate a curveType or parametricCurveType tag at the 256 8-bit inputs (0..1 out)."""
    x = np.arange(256) / 255
    if tag[:4] == b"curv":
        (count,) = struct.unpack_from(">I", tag, 8)
        if count == 0:
            return x
        if count == 1:
            (gamma,) = struct.unpack_from(">H", tag, 12)
            y: np.ndarray = x ** (gamma / 256)
            return y
        table = np.array(struct.unpack_from(f">{count}H", tag, 12), np.float64) / 65_535
        return np.interp(x, np.linspace(0, 1, count), table)
    if tag[:4] != b"para":
        raise ValueError(f"unknown curve type {tag[:4]!r}")
    (function,) = struct.unpack_from(">H", tag, 8)
    size = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[function]
    g, a, b, c, d, e, f = [*_s15f16(tag, 12, size), 0, 0, 0, 0, 0, 0][:7]
    if function == 0:
        return np.asarray(x**g)
    if function in (1, 2):
        d = -b / a
        c, e, f = 0.0, (c if function == 2 else 0.0), (c if function == 2 else 0.0)
    elif function == 3:
        e = f = 0.0
    power = np.power(np.maximum(a * x + b, 0.0), g) + e
    curve: np.ndarray = np.clip(np.where(x >= d, power, c * x + f), 0.0, 1.0)
    return curve


def _matrix_shaper(icc: bytes) -> _MatrixShaper | None:
    """The OpenCV form of a matrix/TRC RGB profile; None for any other kind of profile.

    LittleCMS prefers a profile's A2B tables to its matrix when it has both, so does this.
    """
    tags = _tags(icc)
    needed = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
    if icc[20:24] != b"XYZ " or b"A2B0" in tags or b"A2B1" in tags:
        return None
    if not all(name in tags for name in needed):
        return None
    colorants = np.stack([_s15f16(tags[name], 8, 3) for name in needed[:3]], axis=1)
    curves = np.stack([_curve(tags[name]) for name in needed[3:]], axis=-1)
    to_linear = np.rint(curves * 65_535).astype(np.uint16)
    if (to_linear == to_linear[:, :1]).all():
        # One table for all three channels: cv2.LUT is twice as fast with it.
        to_linear = np.ascontiguousarray(to_linear[:, 0])
    else:
        to_linear = to_linear.reshape(256, 1, 3)
    matrix = np.linalg.solve(_SRGB_COLORANTS, colorants).astype(np.float32)
    return _MatrixShaper(to_linear=to_linear, matrix=matrix)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two uint8 arrays agree within rounding."""
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= SAME_CODES


def _fast_or(littlecms: Converter, icc: bytes, expected: np.ndarray) -> Converter:
    """The OpenCV conversion of a matrix/TRC profile if it matches LittleCMS, else LittleCMS."""
    try:
        fast = _matrix_shaper(icc)
    except Exception:  # an odd tag the parser misreads: LittleCMS reads it right
        return littlecms
    return fast if fast is not None and _same(fast(_PROBE), expected) else littlecms


def _conversions(
    icc: bytes, profile: ImageCms.ImageCmsProfile, space: str
) -> tuple[dict[ColourKind, Converter | None], dict[ColourKind, str]]:
    """Each pixel kind's conversion from a GRAY, RGB or CMYK profile (None: already sRGB)."""
    convert: dict[ColourKind, Converter | None] = dict.fromkeys(KINDS)
    problems: dict[ColourKind, str] = {}
    main: ColourKind = "rgb" if space == "RGB" else "grey" if space == "GRAY" else "cmyk"
    littlecms = _littlecms(_transform(profile, main), _PIL_MODE[main])
    if main == "cmyk":
        convert["cmyk"] = littlecms
        return convert, problems
    grey = _grey_lut(littlecms, main)
    if grey is None:
        problems["grey"] = "greys do not stay grey through this profile"
    elif not _same(grey, _RAMP[0]):
        convert["grey"] = _lut_converter(grey)
    if main == "rgb":
        expected = littlecms(_PROBE)
        if not _same(expected, _PROBE):
            convert["rgb"] = _fast_or(littlecms, icc, expected)
    return convert, problems


def _plan(icc: bytes) -> _Plan:
    """Work out, once per profile, how each kind of pixels tagged with it becomes sRGB.

    A profile is untrusted input: whatever Pillow or LittleCMS raise on reading it or
    building its transform becomes the plan's problem, never the request's failure.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = profile.profile.profile_description or None
        space = profile.profile.xcolor_space.strip()
    except Exception as exc:
        return _Plan(
            None, "", dict.fromkeys(KINDS), dict.fromkeys(KINDS, f"unreadable ICC profile: {exc}")
        )
    problems: dict[ColourKind, str] = {
        kind: f"a {space} profile cannot describe {kind} pixels"
        for kind in KINDS
        if space != _SPACE[kind] and not (kind == "grey" and space == "RGB")
    }
    if space not in _SPACE.values():
        return _Plan(description, space, dict.fromkeys(KINDS), problems)
    try:
        convert, more_problems = _conversions(icc, profile, space)
    except Exception as exc:
        reason = f"LittleCMS cannot convert from this profile: {exc}"
        return _Plan(description, space, dict.fromkeys(KINDS), dict.fromkeys(KINDS, reason))
    main = next(kind for kind in KINDS if _SPACE[kind] == space)
    is_srgb = main != "cmyk" and convert[main] is None and main not in more_problems
    return _Plan(description, space, convert, problems | more_problems, is_srgb=is_srgb)


class _Plans:
    """A thread-safe LRU of plans keyed by a digest of the profile's bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[bytes, _Plan] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, icc: bytes) -> _Plan:
        digest = hashlib.blake2b(icc, digest_size=16).digest()
        with self._lock:
            plan = self._plans.get(digest)
            if plan is not None:
                self._plans.move_to_end(digest)
                return plan
        # Built outside the lock: two threads may both build a new profile's plan once.
        plan = _plan(icc)
        with self._lock:
            self._plans[digest] = plan
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan


_plans = _Plans(PROFILE_CACHE_SIZE)


def _kind(pixels: np.ndarray) -> ColourKind:
    """Grey for L and LA arrays, rgb for RGB and RGBA."""
    return "grey" if colour_of(pixels).ndim == 2 else "rgb"


def to_srgb(pixels: np.ndarray, icc: bytes | None) -> np.ndarray:
    """Convert L, LA, RGB or RGBA pixels from their embedded ICC profile to sRGB.

    Returns ``pixels`` itself, not a copy, when there is no profile, the profile is
    sRGB already, or it cannot be used (``profile_problem`` says why). Greys stay
    grey (L stays L); alpha is unchanged.
    """
    if not icc:
        return pixels
    convert = _plans.get(icc).convert[_kind(pixels)]
    if convert is None:
        return pixels
    return on_colour(pixels, convert)


def cmyk_to_srgb(cmyk: np.ndarray, icc: bytes | None) -> np.ndarray:
    """Convert HxWx4 CMYK (0 = no ink, as Pillow reads it) to HxWx3 sRGB.

    With a usable CMYK profile LittleCMS converts; otherwise each channel is
    (255 - ink) * (255 - K) / 255, Pillow's own conversion, which treats the inks as
    ideal filters and so prints a duller, lighter image than a press would.
    Pillow reads every 4-layer JPEG with Adobe's inverted polarity, which Photoshop
    (and Pillow itself) write; the rare CMYK JPEG written without an Adobe marker
    would come out as its negative.
    """
    convert = _plans.get(icc).convert["cmyk"] if icc else None
    if convert is not None:
        return convert(np.ascontiguousarray(cmyk))
    paper = cv2.subtract(np.full_like(cmyk, 255), cmyk)
    rgb: np.ndarray = cv2.multiply(paper[:, :, :3], cv2.merge([paper[:, :, 3]] * 3), scale=1 / 255)
    return rgb


def profile_problem(icc: bytes | None, kind: ColourKind) -> str | None:
    """Why pixels of ``kind`` tagged with ``icc`` are left unconverted; None when they are not."""
    if not icc:
        return None
    return _plans.get(icc).problems.get(kind)


def is_srgb(icc: bytes | None) -> bool:
    """Whether a profile converts to sRGB as the identity (within rounding); False for none."""
    return _plans.get(icc).is_srgb if icc else False


def describe(icc: bytes | None) -> str | None:
    """The profile's description ("Display P3"), None without a readable profile."""
    return _plans.get(icc).description if icc else None


def embeddable(icc: bytes | None, pixels: np.ndarray) -> bytes | None:
    """The profile to embed with ``pixels`` when the original colours are kept, if it fits.

    An RGB profile fits RGB and RGBA output, a grey one L and LA. Anything else (an
    RGB profile after a grayscale step, a CMYK source, an unreadable profile) is
    dropped and viewers take the pixels for sRGB, which for greys from Display P3 they
    are. Pass the bytes to Pillow's ``save(icc_profile=...)``: OpenCV's JPEG encoder
    cannot write a profile.
    """
    if not icc:
        return None
    plan = _plans.get(icc)
    return icc if plan.space == _SPACE[_kind(pixels)] else None


def cached_profiles() -> int:
    """How many profiles' conversions are cached (at most ``PROFILE_CACHE_SIZE``)."""
    return len(_plans)
