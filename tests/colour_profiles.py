"""Real ICC profiles for colour tests, written from their published definitions.

``PIL.ImageCms.createProfile`` only makes sRGB, Lab and XYZ, so this module writes
ICC v4 profiles itself (ICC.1:2010): matrix/TRC RGB display profiles (header,
``desc``, ``cprt``, ``wtpt``, ``chad``, Bradford-adapted D50 colorants, and gamma,
parametric or sampled tone curves), an RGB profile that only has an ``A2B0`` table,
a grey display profile, and a CMYK output profile whose ``A2B0``/``B2A0`` tables
sample a simple press model. ``DISPLAY_P3`` and ``ADOBE_RGB`` are the two RGB spaces
photos are most often tagged with besides sRGB. The CMYK profile carries only the
tables a decoder uses, not the full set ICC.1 asks of a printer profile.

The colour maths the tests need as an oracle lives here too: sRGB encoding,
XYZ and CIELAB, and CIEDE2000.
"""

import hashlib
import struct
from collections.abc import Callable, Sequence

import numpy as np

# ICC's profile connection space illuminant, D50, as the header stores it.
D50 = np.array([0.9642, 1.0, 0.8249])
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)
# Parametric curve type 3 (ICC.1 table 68): the sRGB transfer function.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
# Adobe RGB (1998) section 4.3.4.2: gamma 2 51/256, as its u8Fixed8 curve stores it.
ADOBE_GAMMA = 563 / 256

Chromaticity = tuple[float, float]
D65_XY: Chromaticity = (0.3127, 0.3290)
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))


def xy_to_xyz(xy: Chromaticity) -> np.ndarray:
    """The XYZ of chromaticity ``xy`` at luminance Y = 1."""
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def bradford(source_white: np.ndarray, target_white: np.ndarray) -> np.ndarray:
    """The Bradford chromatic adaptation matrix from one white to another (XYZ to XYZ)."""
    gain = (BRADFORD @ target_white) / (BRADFORD @ source_white)
    adapted: np.ndarray = np.linalg.inv(BRADFORD) @ np.diag(gain) @ BRADFORD
    return adapted


def rgb_to_xyz_matrix(
    primaries: Sequence[Chromaticity], white: Chromaticity = D65_XY
) -> np.ndarray:
    """The linear RGB to XYZ matrix of an RGB space, in its own white (columns: R, G, B)."""
    columns = np.stack([xy_to_xyz(xy) for xy in primaries], axis=1)
    scale = np.linalg.solve(columns, xy_to_xyz(white))
    matrix: np.ndarray = columns * scale
    return matrix


def pcs_matrix(primaries: Sequence[Chromaticity], white: Chromaticity = D65_XY) -> np.ndarray:
    """The linear RGB to D50 PCS XYZ matrix: the space's matrix adapted from its white to D50."""
    matrix: np.ndarray = bradford(xy_to_xyz(white), D50) @ rgb_to_xyz_matrix(primaries, white)
    return matrix


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Linear light from sRGB-encoded values in 0..1."""
    encoded = np.asarray(encoded, np.float64)
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """SRGB-encoded values in 0..1 from linear light (clipped to 0..1)."""
    linear = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb8_to_xyz(rgb: np.ndarray) -> np.ndarray:
    """D50 PCS XYZ of 8-bit sRGB values (last axis R, G, B), as an sRGB profile maps them."""
    linear = srgb_decode(np.asarray(rgb, np.float64) / 255)
    xyz: np.ndarray = linear @ pcs_matrix(SRGB_PRIMARIES).T
    return xyz


def xyz_to_srgb8(xyz: np.ndarray) -> np.ndarray:
    """8-bit sRGB of D50 PCS XYZ values (out-of-gamut colours clipped), rounded."""
    linear = np.asarray(xyz, np.float64) @ np.linalg.inv(pcs_matrix(SRGB_PRIMARIES)).T
    srgb: np.ndarray = np.rint(srgb_encode(linear) * 255).astype(np.uint8)
    return srgb


def xyz_to_lab(xyz: np.ndarray, white: np.ndarray = D50) -> np.ndarray:
    """CIELAB of XYZ values relative to ``white``."""
    ratio = np.asarray(xyz, np.float64) / white
    delta = 6 / 29
    f = np.where(ratio > delta**3, np.cbrt(ratio), ratio / (3 * delta**2) + 4 / 29)
    lightness = 116 * f[..., 1] - 16
    return np.stack([lightness, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_xyz(lab: np.ndarray, white: np.ndarray = D50) -> np.ndarray:
    """XYZ values relative to ``white`` of CIELAB values."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    delta = 6 / 29
    ratio = np.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29))
    xyz: np.ndarray = ratio * white
    return xyz


def srgb8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D50) of 8-bit sRGB values."""
    return xyz_to_lab(srgb8_to_xyz(rgb))


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005), over the last axis."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dh_big = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = (
        np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum)
        / 2
    )
    h_mean = np.where(c1p * c2p == 0, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = (
        -2
        * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
        * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    )
    result: np.ndarray = np.sqrt(
        (dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh_big / s_h) ** 2 + r_t * (dc / s_c) * (dh_big / s_h)
    )
    return result


# --- the ICC file format -------------------------------------------------------------


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: Sequence[float] | np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in xyz)


def _mluc_tag(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    return (
        b"mluc\0\0\0\0"
        + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28)
        + (encoded)
    )


def _sf32_tag(matrix: np.ndarray) -> bytes:
    return b"sf32\0\0\0\0" + b"".join(_s15f16(v) for v in matrix.ravel())


def _gamma_curve(gamma: float) -> bytes:
    # curveType with one entry: a pure power law, u8Fixed8Number (Adobe RGB stores 563/256).
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _parametric_curve(parameters: Sequence[float]) -> bytes:
    function = {1: 0, 3: 1, 4: 2, 5: 3, 7: 4}[len(parameters)]
    body = b"".join(_s15f16(v) for v in parameters)
    return b"para\0\0\0\0" + struct.pack(">HH", function, 0) + body


def _table_curve(table: np.ndarray) -> bytes:
    # curveType with n entries: the curve sampled at n evenly spaced inputs, as HP's sRGB.
    values: bytes = np.rint(np.clip(table, 0, 1) * 65535).astype(">u2").tobytes()
    return b"curv\0\0\0\0" + struct.pack(">I", len(table)) + values


Transfer = float | Sequence[float] | np.ndarray


def _curve(transfer: Transfer) -> bytes:
    """A gamma (float), parametric (its parameters) or sampled (an array) tone curve tag."""
    if isinstance(transfer, float):
        return _gamma_curve(transfer)
    if isinstance(transfer, np.ndarray):
        return _table_curve(transfer)
    return _parametric_curve(transfer)


def _lut16(grid: np.ndarray, inputs: int, outputs: int) -> bytes:
    """A lut16Type ('mft2') with identity curves around ``grid`` (values 0..1, last axis out)."""
    points = grid.shape[0]
    identity = struct.pack(">3i", 65536, 0, 0) + struct.pack(">3i", 0, 65536, 0)
    identity += struct.pack(">3i", 0, 0, 65536)
    header = b"mft2\0\0\0\0" + struct.pack(">BBBB", inputs, outputs, points, 0) + identity
    header += struct.pack(">HH", 2, 2)
    linear = struct.pack(">HH", 0, 65535)
    table: bytes = np.clip(np.rint(grid.reshape(-1) * 65535), 0, 65535).astype(">u2").tobytes()
    return header + linear * inputs + table + linear * outputs


def _profile(
    device_class: bytes, colour_space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]
) -> bytes:
    """Assemble a v4.3 profile: header, tag table, 4-byte aligned tag data, MD5 profile ID."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = struct.pack(">I4sI", size, b"lcms", 0x04300000)
    header += device_class + colour_space + pcs
    header += struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"APPL"
    header += struct.pack(">I4s4sQI", 0, b"\0\0\0\0", b"\0\0\0\0", 0, 0)
    header += b"".join(_s15f16(v) for v in D50) + b"\0\0\0\0"
    header += b"\0" * (128 - len(header))
    profile = bytearray(header + struct.pack(">I", len(tags)) + table + data)
    # ICC.1 7.2.18: the ID is the MD5 of the profile with flags, intent and ID zeroed.
    profile[84:100] = hashlib.md5(bytes(profile), usedforsecurity=False).digest()
    return bytes(profile)


def rgb_profile(
    description: str,
    primaries: Sequence[Chromaticity],
    transfer: Transfer,
    white: Chromaticity = D65_XY,
) -> bytes:
    """A v4 matrix/TRC RGB display profile with one tone curve for all three channels."""
    adapt = bradford(xy_to_xyz(white), D50)
    colorants = adapt @ rgb_to_xyz_matrix(primaries, white)
    curve = _curve(transfer)
    return _profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        [
            (b"desc", _mluc_tag(description)),
            (b"cprt", _mluc_tag("No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50)),
            (b"chad", _sf32_tag(adapt)),
            (b"rXYZ", _xyz_tag(colorants[:, 0])),
            (b"gXYZ", _xyz_tag(colorants[:, 1])),
            (b"bXYZ", _xyz_tag(colorants[:, 2])),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ],
    )


def grey_profile(description: str, transfer: Transfer) -> bytes:
    """A v4 grey display profile with a D65 white and the given tone curve."""
    return _profile(
        b"mntr",
        b"GRAY",
        b"XYZ ",
        [
            (b"desc", _mluc_tag(description)),
            (b"cprt", _mluc_tag("No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50)),
            (b"chad", _sf32_tag(bradford(xy_to_xyz(D65_XY), D50))),
            (b"kTRC", _curve(transfer)),
        ],
    )


def rgb_table_profile(
    description: str,
    primaries: Sequence[Chromaticity],
    to_linear: Callable[[np.ndarray], np.ndarray],
) -> bytes:
    """A v4 RGB display profile that maps device values to Lab through an A2B0 table only.

    The same colours as ``rgb_profile`` would give, but LittleCMS must interpolate a
    17-point grid rather than apply a matrix: the kind of profile scanners and some
    cameras embed.
    """
    axis = np.linspace(0, 1, 17)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    lab = xyz_to_lab(to_linear(grid) @ pcs_matrix(primaries).T)
    return _profile(
        b"mntr",
        b"RGB ",
        b"Lab ",
        [
            (b"desc", _mluc_tag(description)),
            (b"cprt", _mluc_tag("No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50)),
            (b"A2B0", _lut16(_lab16(lab), 3, 3)),
        ],
    )


# --- a CMYK press model -----------------------------------------------------------------

# sRGB of each ink printed solid on white paper: a coated-paper press's C, M, Y and K.
INKS = np.array([(0, 160, 227), (230, 0, 126), (255, 237, 0), (35, 31, 32)], np.float64)
CMYK_GRID = 9


def press_xyz(cmyk: np.ndarray) -> np.ndarray:
    """D50 XYZ of ink coverages in 0..1 (last axis C, M, Y, K) on perfectly white paper.

    Each ink filters the light per sRGB channel by its solid colour's linear
    transmittance, linearly in its coverage; the filters multiply.
    """
    transmittance = srgb_decode(INKS / 255)
    coverage = np.asarray(cmyk, np.float64)[..., :, None]
    linear = np.prod(1 - coverage * (1 - transmittance), axis=-2)
    xyz: np.ndarray = linear @ pcs_matrix(SRGB_PRIMARIES).T
    return xyz


def _lab16(lab: np.ndarray) -> np.ndarray:
    """Lab as lut16Type encodes it (ICC v2 legacy, 0..1 of 0..65535: L 100 is 0xFF00)."""
    return (
        np.stack(
            [lab[..., 0] * 0xFF00 / 100, (lab[..., 1] + 128) * 256, (lab[..., 2] + 128) * 256], -1
        )
        / 65535
    )


def _separate(lab16: np.ndarray) -> np.ndarray:
    """Ink coverages for Lab (lut16 encoded): a plain separation with full black generation."""
    l_star = lab16[..., 0] * 65535 / 0xFF00 * 100
    a = lab16[..., 1] * 65535 / 256 - 128
    b = lab16[..., 2] * 65535 / 256 - 128
    rgb = srgb_encode(
        lab_to_xyz(np.stack([l_star, a, b], -1)) @ np.linalg.inv(pcs_matrix(SRGB_PRIMARIES)).T
    )
    cmy = 1 - rgb
    black = cmy.min(axis=-1, keepdims=True)
    return np.concatenate([cmy, black], axis=-1)


def cmyk_profile(description: str = "Darkroom test press (coated)") -> bytes:
    """A v4 CMYK output profile of ``press_xyz``: Lab PCS, lut16 A2B0 and B2A0 tables."""
    axis = np.linspace(0, 1, CMYK_GRID)
    coverages = np.stack(np.meshgrid(axis, axis, axis, axis, indexing="ij"), -1)
    a2b = _lab16(xyz_to_lab(press_xyz(coverages)))
    lab_axis = np.linspace(0, 1, 17)
    lab_grid = np.stack(np.meshgrid(lab_axis, lab_axis, lab_axis, indexing="ij"), -1)
    b2a = _separate(lab_grid)
    return _profile(
        b"prtr",
        b"CMYK",
        b"Lab ",
        [
            (b"desc", _mluc_tag(description)),
            (b"cprt", _mluc_tag("No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50)),
            (b"A2B0", _lut16(a2b, 4, 3)),
            (b"B2A0", _lut16(b2a, 3, 4)),
        ],
    )


DISPLAY_P3 = rgb_profile("Display P3", P3_PRIMARIES, SRGB_CURVE)
ADOBE_RGB = rgb_profile("Adobe RGB (1998)", ADOBE_PRIMARIES, ADOBE_GAMMA)
GREY_GAMMA_22 = grey_profile("Gray Gamma 2.2", 2.2)
