"""Photo metadata read at ingest: EXIF date, camera, lens and GPS in every format that carries
EXIF, colour class and pHash from the reduced decode, and GPS kept only when asked."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from catalog.config import Settings
from catalog.errors import ImageTooLarge
from catalog.fingerprint import perceptual_hash
from catalog.ingest import kept
from catalog.metadata import colour_class, verified_metadata
from catalog.models import ColourClass, camera_name
from tests.imaging import ORIENTABLE, encoded, oriented, upright_picture

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50_000_000
Rational = TiffImagePlugin.IFDRational


def camera_exif(
    *,
    taken: str | None = "2024:05:01 14:03:22",
    offset: str | None = "+02:00",
    gps: bool = True,
) -> bytes:
    """EXIF as a camera writes it: make, model, date, offset, lens and (Eiffel Tower) GPS."""
    exif = Image.Exif()
    exif[0x010F] = "Canon\x00"
    exif[0x0110] = " Canon EOS 5D Mark IV "
    details = exif.get_ifd(0x8769)
    if taken is not None:
        details[0x9003] = taken
    if offset is not None:
        details[0x9011] = offset
    details[0xA434] = "EF24-105mm f/4L IS USM"
    if gps:
        exif.get_ifd(0x8825).update(
            {
                1: "N",
                2: (Rational(48), Rational(51), Rational(2955, 100)),
                3: "W",
                4: (Rational(2), Rational(17), Rational(40)),
            }
        )
    return exif.tobytes()


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> np.ndarray:
    """A uint8 RGB array of one colour."""
    return np.full((size[1], size[0], 3), rgb, np.uint8)


@pytest.mark.parametrize("fmt", ORIENTABLE)
def test_exif_is_read_in_every_format_that_carries_it(fmt: str) -> None:
    data = encoded(fmt, upright_picture(), exif=camera_exif())
    photo = verified_metadata(data, max_pixels=LIMIT).photo
    assert photo is not None
    assert photo.taken_at == "2024-05-01T14:03:22+02:00"
    assert (photo.camera_make, photo.camera_model) == ("Canon", "Canon EOS 5D Mark IV")
    assert photo.camera == "Canon EOS 5D Mark IV"
    assert photo.lens == "EF24-105mm f/4L IS USM"
    assert photo.has_location
    assert photo.location is not None
    # 48 deg 51' 29.55" N, 2 deg 17' 40" W
    assert photo.location.lat == pytest.approx(48 + 51 / 60 + 29.55 / 3600, abs=1e-6)
    assert photo.location.lon == pytest.approx(-(2 + 17 / 60 + 40 / 3600), abs=1e-6)


def test_offset_falls_back_to_offset_time_and_is_left_out_when_absent() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: "2019:12:31 23:59:59", 0x9010: "-05:30"})
    with_offset = encoded("jpeg", upright_picture(), exif=exif.tobytes())
    photo = verified_metadata(with_offset, max_pixels=LIMIT).photo
    assert photo is not None and photo.taken_at == "2019-12-31T23:59:59-05:30"
    bare = encoded("png", upright_picture(), exif=camera_exif(offset=None, gps=False))
    photo = verified_metadata(bare, max_pixels=LIMIT).photo
    assert photo is not None
    assert photo.taken_at == "2024-05-01T14:03:22"
    assert (photo.has_location, photo.location) == (False, None)


@pytest.mark.parametrize(
    "placeholder", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2024:13:01 00:00:00"]
)
def test_placeholder_dates_are_unknown(placeholder: str) -> None:
    data = encoded("jpeg", upright_picture(), exif=camera_exif(taken=placeholder))
    photo = verified_metadata(data, max_pixels=LIMIT).photo
    assert photo is not None and photo.taken_at is None


def test_an_image_without_exif_has_only_pixel_metadata() -> None:
    data = (ROOT / "samples" / "coffee.png").read_bytes()
    photo = verified_metadata(data, max_pixels=LIMIT).photo
    assert photo is not None
    assert (photo.taken_at, photo.camera, photo.lens, photo.has_location) == (
        None,
        None,
        None,
        False,
    )
    assert photo.colour is not None and photo.dominant_colour is not None
    assert photo.phash is not None and len(photo.phash) == 16
    assert photo.phash == photo.phash.lower()
    int(photo.phash, 16)


@pytest.mark.parametrize(("make", "model", "name"), [
    ("Canon", "Canon EOS 5D Mark IV", "Canon EOS 5D Mark IV"),
    ("Apple", "iPhone 12 Pro", "Apple iPhone 12 Pro"),
    ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
    ("FUJIFILM", "X-T4", "FUJIFILM X-T4"),
    (None, "X100V", "X100V"),
    ("Leica", None, "Leica"),
    (None, None, None),
])  # fmt: skip
def test_camera_name_does_not_repeat_the_make(
    make: str | None, model: str | None, name: str | None
) -> None:
    assert camera_name(make, model) == name


@pytest.mark.parametrize(("rgb", "colour", "hex_"), [
    ((255, 0, 0), "red", "#ff0000"),
    ((255, 128, 0), "orange", "#ff8000"),
    ((255, 255, 0), "yellow", "#ffff00"),
    ((128, 255, 0), "lime", "#80ff00"),
    ((0, 255, 0), "green", "#00ff00"),
    ((0, 255, 128), "spring", "#00ff80"),
    ((0, 255, 255), "cyan", "#00ffff"),
    ((0, 128, 255), "azure", "#0080ff"),
    ((0, 0, 255), "blue", "#0000ff"),
    ((128, 0, 255), "violet", "#8000ff"),
    ((255, 0, 255), "magenta", "#ff00ff"),
    ((255, 0, 128), "rose", "#ff0080"),
    ((0, 0, 0), "black", "#000000"),
    ((128, 128, 128), "grey", "#808080"),
    ((250, 250, 250), "white", "#fafafa"),
    ((120, 110, 115), "grey", "#786e73"),  # chroma 10/255: below CHROMATIC
])  # fmt: skip
def test_colour_class_of_solid_colours(
    rgb: tuple[int, int, int], colour: ColourClass, hex_: str
) -> None:
    assert colour_class(solid(rgb)) == (colour, hex_)


def test_colour_is_weighted_by_chroma_and_neutral_when_a_few_pixels_are_coloured() -> None:
    # Half pale pink (low chroma), half saturated blue: blue wins on chroma, not area.
    picture = solid((230, 200, 210), (10, 10))
    picture[:5] = (20, 20, 230)
    assert colour_class(picture)[0] == "blue"
    # A grey picture with a 2% red speck is still grey.
    grey = solid((100, 100, 100), (10, 10))
    grey[0, :2] = (255, 0, 0)
    assert colour_class(grey)[0] == "grey"


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_hash_and_colour_are_of_the_upright_photo(fmt: str, orientation: int) -> None:
    upright = verified_metadata(oriented(fmt, 1), max_pixels=LIMIT).photo
    turned = verified_metadata(oriented(fmt, orientation), max_pixels=LIMIT).photo
    assert upright is not None and turned is not None
    assert turned.phash == upright.phash
    assert turned.colour == upright.colour


def test_phash_is_the_fingerprint_of_the_grayscale_pixels() -> None:
    picture = np.random.default_rng(3).integers(0, 256, (100, 120, 3), np.uint8)
    data = encoded("png", picture)
    photo = verified_metadata(data, max_pixels=LIMIT).photo
    gray = np.asarray(Image.fromarray(picture).convert("L"))
    assert photo is not None and photo.phash == f"{perceptual_hash(gray):016x}"


def test_a_jpeg_is_read_from_its_reduced_decode() -> None:
    # 1/8 scale: the 1024x768 JPEG's colour and hash come from 128x96 pixels; the photo is
    # blue on the left, so an unreduced read and the reduced one agree on the class.
    picture = solid((255, 255, 255), (1024, 768))
    picture[:, :512] = (10, 30, 200)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90)
    meta = verified_metadata(buffer.getvalue(), max_pixels=LIMIT)
    assert meta.photo is not None and meta.photo.colour == "blue"
    assert (meta.width, meta.height) == (1024, 768)


def test_the_pixel_limit_still_applies_before_any_decode() -> None:
    data = encoded("png", upright_picture(), exif=camera_exif())
    with pytest.raises(ImageTooLarge):
        verified_metadata(data, max_pixels=48 * 32 - 1)


def test_coordinates_are_dropped_unless_keep_gps() -> None:
    data = encoded("jpeg", upright_picture(), exif=camera_exif())
    meta = verified_metadata(data, max_pixels=LIMIT)
    dropped = kept(meta, Settings(keep_gps=False)).photo
    assert dropped is not None and (dropped.has_location, dropped.location) == (True, None)
    kept_photo = kept(meta, Settings(keep_gps=True)).photo
    assert kept_photo is not None and kept_photo.location == meta.photo.location  # type: ignore[union-attr]


def test_sixteen_bit_grayscale_keeps_its_tones() -> None:
    # A 16-bit ramp: Pillow's own conversion would clip it to a flat white.
    ramp = (np.arange(64, dtype=np.uint16)[None, :] * 1000).repeat(16, axis=0)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, "PNG")  # uint16: mode I;16
    photo = verified_metadata(buffer.getvalue(), max_pixels=LIMIT).photo
    assert photo is not None and photo.colour == "grey"
    eight = (ramp / 257).astype(np.uint8)
    assert photo.phash == f"{perceptual_hash(eight):016x}"
