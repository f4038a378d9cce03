"""Colour: embedded ICC profiles to sRGB, checked in CIEDE2000 against analytic colours.

The profiles are real ICC v4 files written by ``tests/colour_profiles.py`` from the
published definitions of Display P3 and Adobe RGB (1998). A patch of a known sRGB
colour is stored as the device values each space needs for it (computed with the
spaces' own matrices and curves, not with LittleCMS), and must come back within
``TOLERANCE`` of that colour. A difference of 1 is about the smallest a trained eye
sees between two patches side by side; 8-bit rounding of the device values alone
accounts for up to ~0.5.
"""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from processor import colour
from processor.codec import decode, open_image
from tests import colour_profiles as cp

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TOLERANCE = 1.0  # CIEDE2000, for lossless pixels
JPEG_TOLERANCE = 2.0  # CIEDE2000, after a quality 95 JPEG with 4:4:4 chroma
MAX_PIXELS = 50_000_000

SRGB_PATCHES = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "grey": (128, 128, 128),
    "skin": (224, 172, 140),
    "sky": (90, 150, 220),
}


def adobe_encode(linear: np.ndarray) -> np.ndarray:
    """Adobe RGB (1998) device values in 0..1 from linear light."""
    encoded: np.ndarray = np.clip(linear, 0, 1) ** (1 / cp.ADOBE_GAMMA)
    return encoded


RGB_SPACES = {
    "Display P3": (cp.DISPLAY_P3, cp.P3_PRIMARIES, cp.srgb_encode),
    "Adobe RGB (1998)": (cp.ADOBE_RGB, cp.ADOBE_PRIMARIES, adobe_encode),
}
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SRGB_TABLE = cp.srgb_decode(np.linspace(0, 1, 1024))


def device_values(srgb: tuple[int, ...], space: str) -> np.ndarray:
    """The 8-bit values that show ``srgb`` in an RGB space: sRGB -> XYZ (D50) -> the space."""
    _, primaries, encode = RGB_SPACES[space]
    xyz = cp.srgb8_to_xyz(np.array(srgb))
    linear = np.linalg.solve(cp.pcs_matrix(primaries), xyz)
    assert linear.min() > -1e-6 and linear.max() < 1 + 1e-6, "sRGB patch outside the space"
    device: np.ndarray = np.rint(encode(linear) * 255).astype(np.uint8)
    return device


def patches(colours: list[np.ndarray], side: int = 8) -> np.ndarray:
    """A row of flat ``side`` x ``side`` patches."""
    return np.ascontiguousarray(
        np.concatenate([np.broadcast_to(c, (side, side, len(c))) for c in colours], axis=1)
    )


def centres(image: np.ndarray, count: int, side: int = 8) -> np.ndarray:
    """The centre pixel of each patch of a row made by ``patches``."""
    return image[side // 2, side // 2 :: side][:count]


def delta_e(srgb_a: np.ndarray, srgb_b: np.ndarray) -> np.ndarray:
    return cp.delta_e_2000(cp.srgb8_to_lab(srgb_a), cp.srgb8_to_lab(srgb_b))


def littlecms(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """The reference: LittleCMS through Pillow, with colour.py's intent and flags."""
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=colour.INTENT,
        flags=colour.FLAGS,
    )
    converted: np.ndarray = np.asarray(transform.apply(Image.fromarray(pixels)))
    return converted


def cube(steps: int = 17) -> np.ndarray:
    values = np.linspace(0, 255, steps).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1)
    return np.ascontiguousarray(grid.reshape(steps, steps * steps, 3))


# --- the test profiles are what they claim to be ---------------------------------------


@pytest.mark.parametrize(
    ("icc", "colorants"),
    [
        # As Debian's compatibleWithAdobeRGB1998.icc (icc-profiles-free) carries them.
        (
            cp.ADOBE_RGB,
            [(0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457)],
        ),
        # P3 primaries and D65 white adapted to D50: the colorants of Apple's Display P3.
        (
            cp.DISPLAY_P3,
            [
                (0.51512, 0.24120, -0.00105),
                (0.29198, 0.69225, 0.04189),
                (0.15710, 0.06657, 0.78407),
            ],
        ),
    ],
)
def test_written_profiles_load_in_littlecms_with_the_published_colorants(
    icc: bytes, colorants: list[tuple[float, float, float]]
) -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
    assert profile.xcolor_space.strip() == "RGB"
    assert profile.is_matrix_shaper
    tags = (profile.red_colorant, profile.green_colorant, profile.blue_colorant)
    read = [tag[0] for tag in tags if tag is not None]  # (XYZ, xyY) pairs
    np.testing.assert_allclose(read, colorants, atol=2e-4)
    white = profile.media_white_point
    assert white is not None
    np.testing.assert_allclose(white[0], cp.D50, atol=1e-4)


@pytest.mark.parametrize("space", RGB_SPACES)
def test_littlecms_round_trip_through_the_profile_is_near_lossless(space: str) -> None:
    icc = RGB_SPACES[space][0]
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    srgb = ImageCms.createProfile("sRGB")
    there = ImageCms.buildTransform(srgb, profile, "RGB", "RGB", colour.INTENT)
    back = ImageCms.buildTransform(profile, srgb, "RGB", "RGB", colour.INTENT)
    original = cube()
    returned = np.asarray(back.apply(there.apply(Image.fromarray(original))))
    difference = delta_e(original, returned)
    # 8-bit device values in a wider gamut are coarser: a few saturated colours move ~1.
    assert difference.mean() < 0.2
    assert difference.max() < 2.0


def test_grey_and_cmyk_profiles_load_in_littlecms() -> None:
    grey = ImageCms.ImageCmsProfile(io.BytesIO(cp.GREY_GAMMA_22)).profile
    cmyk = ImageCms.ImageCmsProfile(io.BytesIO(cp.cmyk_profile())).profile
    assert (grey.xcolor_space.strip(), grey.profile_description) == ("GRAY", "Gray Gamma 2.2")
    assert cmyk.xcolor_space.strip() == "CMYK"


def test_ciede2000_matches_sharma_wu_dalal_reference_pairs() -> None:
    first = np.array(
        [[50, 2.6772, -79.7751], [50, 0, 0], [50, 2.5, 0], [60.2574, -34.0099, 36.2677]]
    )
    second = np.array([[50, 0, -82.7485], [50, -1, 2], [73, 25, -18], [60.4626, -34.1751, 39.4387]])
    expected = [2.0425, 2.3669, 27.1492, 1.2644]
    np.testing.assert_allclose(cp.delta_e_2000(first, second), expected, atol=1e-4)


# --- RGB to sRGB ------------------------------------------------------------------------


@pytest.mark.parametrize("space", RGB_SPACES)
def test_known_colours_encoded_in_a_wide_gamut_space_land_on_their_srgb_values(
    space: str,
) -> None:
    icc = RGB_SPACES[space][0]
    expected = np.array(list(SRGB_PATCHES.values()), np.uint8)
    stored = patches([device_values(tuple(c), space) for c in SRGB_PATCHES.values()])

    converted = colour.to_srgb(stored, icc)

    assert converted.shape == stored.shape and converted.dtype == np.uint8
    difference = delta_e(centres(converted, len(expected)), expected)
    assert difference.max() <= TOLERANCE, dict(zip(SRGB_PATCHES, difference.round(2), strict=True))
    # Shown unconverted, the same pixels are visibly wrong: the test can tell.
    assert delta_e(centres(stored, len(expected)), expected).max() > 3 * TOLERANCE


def test_a_display_p3_jpeg_decoded_by_the_codec_lands_on_its_srgb_values() -> None:
    expected = np.array(list(SRGB_PATCHES.values()), np.uint8)
    stored = patches([device_values(tuple(c), "Display P3") for c in SRGB_PATCHES.values()], 16)
    buffer = io.BytesIO()
    Image.fromarray(stored).save(
        buffer, "JPEG", quality=95, subsampling=0, icc_profile=cp.DISPLAY_P3
    )
    data = buffer.getvalue()
    icc = Image.open(io.BytesIO(data)).info["icc_profile"]

    stored = open_image(data, max_pixels=MAX_PIXELS).decode(colour="keep").pixels
    converted = colour.to_srgb(stored, icc)

    assert icc == cp.DISPLAY_P3
    difference = delta_e(centres(converted, len(expected), 16), expected)
    assert difference.max() <= JPEG_TOLERANCE
    # The codec does the same by default.
    assert np.array_equal(decode(data, max_pixels=MAX_PIXELS).pixels, converted)


@pytest.mark.parametrize("space", RGB_SPACES)
def test_matrix_profiles_take_the_opencv_path_and_agree_with_littlecms(space: str) -> None:
    icc, primaries, _ = RGB_SPACES[space]
    photo = np.asarray(Image.open(SAMPLES / "rocket.jpg").convert("RGB"))
    assert isinstance(colour._plans.get(icc).convert["rgb"], colour._MatrixShaper)
    for pixels in (cube(), photo):
        ours, reference = colour.to_srgb(pixels, icc), littlecms(pixels, icc)
        # Both round: they may differ by one code value, which near black is up to ~1.6.
        assert np.abs(ours.astype(np.int16) - reference).max() <= colour.SAME_CODES
        assert delta_e(ours, reference).mean() < 0.1
    # Against the exact maths (device -> linear -> XYZ -> sRGB, clipped, rounded), the
    # OpenCV path misses no more colours than LittleCMS does.
    pixels = cube(33)
    device = pixels / 255
    linear = cp.srgb_decode(device) if space == "Display P3" else device**cp.ADOBE_GAMMA
    exact = cp.xyz_to_srgb8(linear @ cp.pcs_matrix(primaries).T)
    ours, reference = colour.to_srgb(pixels, icc), littlecms(pixels, icc)
    assert np.count_nonzero(ours != exact) <= np.count_nonzero(reference != exact)


def test_a_sampled_tone_curve_takes_the_opencv_path_too() -> None:
    icc = cp.rgb_profile("Adobe RGB (sampled)", cp.ADOBE_PRIMARIES, np.linspace(0, 1, 4096) ** 2.2)
    pixels = cube()
    assert isinstance(colour._plans.get(icc).convert["rgb"], colour._MatrixShaper)
    assert np.abs(colour.to_srgb(pixels, icc).astype(np.int16) - littlecms(pixels, icc)).max() <= 1


def test_the_numpy_lookup_for_opencv_4_gives_the_same_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pixels = cube()
    with_opencv_lut = colour.to_srgb(pixels, cp.DISPLAY_P3)
    monkeypatch.setattr(colour, "_CV_LUT_16", False)
    np.testing.assert_array_equal(colour.to_srgb(pixels, cp.DISPLAY_P3), with_opencv_lut)


def test_a_table_based_rgb_profile_is_converted_by_littlecms() -> None:
    icc = cp.rgb_table_profile("Display P3 (tables)", cp.P3_PRIMARIES, cp.srgb_decode)
    expected = np.array(list(SRGB_PATCHES.values()), np.uint8)
    stored = patches([device_values(tuple(c), "Display P3") for c in SRGB_PATCHES.values()])

    converted = colour.to_srgb(stored, icc)

    assert not isinstance(colour._plans.get(icc).convert["rgb"], colour._MatrixShaper)
    np.testing.assert_array_equal(converted, littlecms(stored, icc))
    assert delta_e(centres(converted, len(expected)), expected).max() <= TOLERANCE


@pytest.mark.parametrize(
    "icc",
    [
        SRGB_ICC,
        cp.rgb_profile("sRGB IEC61966-2.1", cp.SRGB_PRIMARIES, cp.SRGB_CURVE),
        cp.rgb_profile("sRGB (1024-entry curves)", cp.SRGB_PRIMARIES, SRGB_TABLE),
    ],
    ids=["littlecms-srgb", "parametric-srgb", "sampled-srgb"],
)
def test_srgb_tagged_pixels_are_returned_as_they_are(icc: bytes) -> None:
    pixels = cube()
    assert colour.is_srgb(icc)
    assert colour.to_srgb(pixels, icc) is pixels
    assert colour.profile_problem(icc, "rgb") is None


@pytest.mark.parametrize("icc", [None, b""])
def test_untagged_pixels_are_returned_as_they_are(icc: bytes | None) -> None:
    pixels = cube()
    assert colour.to_srgb(pixels, icc) is pixels
    assert not colour.is_srgb(icc)
    assert colour.describe(icc) is None


def test_a_wide_gamut_profile_is_not_taken_for_srgb() -> None:
    assert not colour.is_srgb(cp.DISPLAY_P3)
    assert not colour.is_srgb(cp.ADOBE_RGB)


def test_alpha_passes_through_unchanged() -> None:
    rgb = cube()
    alpha = np.random.default_rng(1).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])

    converted = colour.to_srgb(rgba, cp.DISPLAY_P3)

    assert converted.shape == rgba.shape
    np.testing.assert_array_equal(converted[:, :, 3], alpha)
    np.testing.assert_array_equal(converted[:, :, :3], colour.to_srgb(rgb, cp.DISPLAY_P3))


def test_read_only_pixels_are_converted_and_left_untouched() -> None:
    pixels = cube()
    before = pixels.copy()
    pixels.flags.writeable = False
    converted = colour.to_srgb(pixels, cp.ADOBE_RGB)
    np.testing.assert_array_equal(pixels, before)
    assert not np.array_equal(converted, before)


# --- grey -------------------------------------------------------------------------------


def test_a_grey_profile_keeps_grey_pixels_grey_on_the_srgb_curve() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = np.rint(cp.srgb_encode((ramp / 255) ** 2.2) * 255)

    converted = colour.to_srgb(ramp, cp.GREY_GAMMA_22)

    assert converted.shape == ramp.shape and converted.dtype == np.uint8
    assert np.abs(converted - expected).max() <= 1
    assert colour.profile_problem(cp.GREY_GAMMA_22, "grey") is None


def test_grey_with_alpha_keeps_its_alpha() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    alpha = ramp.T.copy()
    converted = colour.to_srgb(np.dstack([ramp, alpha]), cp.GREY_GAMMA_22)
    assert converted.shape == (16, 16, 2)
    np.testing.assert_array_equal(converted[:, :, 1], alpha)
    np.testing.assert_array_equal(converted[:, :, 0], colour.to_srgb(ramp, cp.GREY_GAMMA_22))


def test_grey_pixels_tagged_with_an_rgb_profile_follow_its_neutral_axis() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    adobe = colour.to_srgb(ramp, cp.ADOBE_RGB)
    expected = np.rint(cp.srgb_encode((ramp / 255) ** cp.ADOBE_GAMMA) * 255)
    assert adobe.ndim == 2 and np.abs(adobe - expected).max() <= 1
    # Display P3 has sRGB's curve and white: its greys are sRGB's greys.
    assert colour.to_srgb(ramp, cp.DISPLAY_P3) is ramp


# --- profiles that cannot be used -------------------------------------------------------

LAB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


@pytest.mark.parametrize(
    ("icc", "reason"),
    [
        (b"not a profile at all", "unreadable"),
        (cp.DISPLAY_P3[:200], "unreadable"),
        (LAB_ICC, "Lab profile cannot describe rgb"),
        (cp.GREY_GAMMA_22, "GRAY profile cannot describe rgb"),
        (cp.cmyk_profile(), "CMYK profile cannot describe rgb"),
    ],
    ids=["garbage", "truncated", "lab", "grey-on-rgb", "cmyk-on-rgb"],
)
def test_an_unusable_profile_leaves_the_pixels_and_says_why(icc: bytes, reason: str) -> None:
    pixels = cube()
    assert colour.to_srgb(pixels, icc) is pixels
    problem = colour.profile_problem(icc, "rgb")
    assert problem is not None and reason in problem


def test_corrupt_profile_has_no_description() -> None:
    assert colour.describe(b"\0" * 300) is None
    assert colour.describe(cp.DISPLAY_P3) == "Display P3"


def test_the_profile_cache_is_bounded() -> None:
    pixels = cube(5)
    for number in range(colour.PROFILE_CACHE_SIZE + 8):
        icc = cp.rgb_profile(f"P3 copy {number}", cp.P3_PRIMARIES, cp.SRGB_CURVE)
        colour.to_srgb(pixels, icc)
        assert colour.cached_profiles() <= colour.PROFILE_CACHE_SIZE
    assert colour.cached_profiles() == colour.PROFILE_CACHE_SIZE


# --- CMYK -------------------------------------------------------------------------------

CMYK_PATCHES = {
    "cyan": (255, 0, 0, 0),
    "magenta": (0, 255, 0, 0),
    "yellow": (0, 0, 255, 0),
    "black": (0, 0, 0, 255),
    "white": (0, 0, 0, 0),
    "red": (0, 255, 255, 0),
}
NAIVE = {
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "yellow": (255, 255, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
}


def cmyk_expected() -> np.ndarray:
    """The press model's sRGB for each CMYK patch."""
    inks = np.array(list(CMYK_PATCHES.values())) / 255
    return cp.xyz_to_srgb8(cp.press_xyz(inks))


def test_cmyk_patches_with_a_press_profile_land_on_the_press_colours() -> None:
    stored = patches([np.array(c, np.uint8) for c in CMYK_PATCHES.values()])
    converted = colour.cmyk_to_srgb(stored, cp.cmyk_profile())
    assert converted.shape == (*stored.shape[:2], 3)
    difference = delta_e(centres(converted, len(CMYK_PATCHES)), cmyk_expected())
    assert difference.max() <= TOLERANCE, dict(zip(CMYK_PATCHES, difference.round(2), strict=True))


@pytest.mark.parametrize("icc", [None, b"junk", cp.DISPLAY_P3])
def test_cmyk_without_a_usable_profile_is_converted_naively(icc: bytes | None) -> None:
    stored = patches([np.array(c, np.uint8) for c in CMYK_PATCHES.values()])
    converted = colour.cmyk_to_srgb(stored, icc)
    expected = np.array(list(NAIVE.values()), np.uint8)
    np.testing.assert_array_equal(centres(converted, len(NAIVE)), expected)
    # Pillow's own conversion, which the codec used so far, gives the same pixels.
    pillow = np.asarray(
        Image.frombytes("CMYK", stored.shape[1::-1], stored.tobytes()).convert("RGB")
    )
    assert np.abs(converted.astype(np.int16) - pillow).max() <= 1


def test_an_adobe_cmyk_jpeg_as_pillow_reads_it_lands_on_the_press_colours() -> None:
    stored = patches([np.array(c, np.uint8) for c in CMYK_PATCHES.values()], 16)
    image = Image.frombytes("CMYK", stored.shape[1::-1], stored.tobytes())
    buffer = io.BytesIO()
    # Pillow writes CMYK JPEGs as Photoshop does: inverted, with an Adobe APP14 marker.
    image.save(buffer, "JPEG", quality=95, subsampling=0, icc_profile=cp.cmyk_profile())
    read = Image.open(io.BytesIO(buffer.getvalue()))
    assert (read.mode, read.info["adobe"]) == ("CMYK", 100)

    converted = colour.cmyk_to_srgb(np.asarray(read), read.info["icc_profile"])

    difference = delta_e(centres(converted, len(CMYK_PATCHES), 16), cmyk_expected())
    assert difference.max() <= JPEG_TOLERANCE


# --- keeping the original profile -------------------------------------------------------


def test_embeddable_keeps_a_profile_only_with_pixels_it_describes() -> None:
    rgb, grey = cube(), np.zeros((4, 4), np.uint8)
    assert colour.embeddable(cp.DISPLAY_P3, rgb) == cp.DISPLAY_P3
    assert colour.embeddable(cp.DISPLAY_P3, np.dstack([rgb, rgb[:, :, 0]])) == cp.DISPLAY_P3
    assert colour.embeddable(cp.DISPLAY_P3, grey) is None  # after grayscale
    assert colour.embeddable(cp.GREY_GAMMA_22, grey) == cp.GREY_GAMMA_22
    assert colour.embeddable(cp.cmyk_profile(), rgb) is None
    assert colour.embeddable(b"junk", rgb) is None
    assert colour.embeddable(None, rgb) is None


def test_a_kept_profile_survives_pillows_encoders() -> None:
    pixels = cube()
    for fmt in ("JPEG", "PNG", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(
            buffer, fmt, icc_profile=colour.embeddable(cp.ADOBE_RGB, pixels)
        )
        assert Image.open(io.BytesIO(buffer.getvalue())).info["icc_profile"] == cp.ADOBE_RGB
