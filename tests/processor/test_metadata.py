"""Metadata: none out by default, the input's EXIF on request, and what /v1/info reads of it."""

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, ImageCms, ImageOps

from processor.codec import (
    OUTPUT_FORMATS,
    _avif_bit_depth,
    decode,
    encode,
    open_image,
    probe,
)
from processor.errors import InvalidParameter
from tests.imaging import (
    EXIF_ORIENTATION,
    TOLERANCE,
    difference,
    encoded,
    stored_pixels,
    upright_picture,
)
from tests.processor.crafted import (
    camera_exif,
    exif_with_thumbnail,
    png16,
    tiff16,
    with_png_exif,
)
from tests.processor.test_api import assert_error, make_client

MAX = 50_000_000
GPS = ExifTags.IFD.GPSInfo
DETAILS = ExifTags.IFD.Exif


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def phone_photo(fmt: str = "jpeg", orientation: int = 6) -> bytes:
    """The upright picture stored sideways as a phone does, with camera, time and GPS."""
    stored = stored_pixels(upright_picture(), orientation)
    exif = camera_exif(orientation).tobytes()
    if fmt == "png":  # after the pixels, where some tools write it
        return with_png_exif(encoded("png", stored), exif, after_pixels=True)
    if fmt == "tiff":  # the camera's tags in the TIFF's own directory
        tiffinfo = {tag: value for tag, value in camera_exif(orientation).items() if tag < 0x8000}
        buffer = io.BytesIO()
        Image.fromarray(stored).save(buffer, "TIFF", tiffinfo=tiffinfo)
        return buffer.getvalue()
    return encoded(fmt, stored, exif=exif)


def exif_of(content: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(content)) as image:
        return image.getexif()


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_output_carries_no_exif_by_default(client: TestClient, fmt: str) -> None:
    response = client.post("/v1/process", params={"format": fmt}, content=phone_photo())
    assert response.status_code == 200, response.text
    assert b"Darkroom" not in response.content  # the camera's make, nor anything near it
    assert b"Exif\x00\x00" not in response.content
    with Image.open(io.BytesIO(response.content)) as result:
        assert "exif" not in result.info
        assert not result.getexif()
        # Lossy twice over for JPEG and AVIF.
        assert difference(np.asarray(result.convert("RGB")), upright_picture()) <= 2 * TOLERANCE


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_metadata_keep_copies_the_exif_with_orientation_1(client: TestClient, fmt: str) -> None:
    params = {"format": fmt, "metadata": "keep", "ops": "resize:width=24"}
    response = client.post("/v1/process", params=params, content=phone_photo())
    assert response.status_code == 200, response.text
    exif = exif_of(response.content)
    assert exif[ExifTags.Base.Make] == "Darkroom"
    assert exif[ExifTags.Base.Model] == "Phone 1"
    assert exif.get(EXIF_ORIENTATION, 1) == 1
    details = exif.get_ifd(DETAILS)
    assert details[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
    assert (details[ExifTags.Base.ExifImageWidth], details[ExifTags.Base.ExifImageHeight]) == (
        24,
        16,
    )
    assert exif.get_ifd(GPS)[ExifTags.GPS.GPSLatitudeRef] == "N"
    with Image.open(io.BytesIO(response.content)) as result:
        # A viewer honouring the kept EXIF shows the picture upright.
        viewed = np.asarray(ImageOps.exif_transpose(result).convert("RGB"))
    assert difference(viewed, upright_picture(24, 16)) <= TOLERANCE * 2


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff", "heic", "avif"])
def test_metadata_keep_reads_the_exif_of_every_format(client: TestClient, fmt: str) -> None:
    data = phone_photo(fmt)
    assert probe(data).camera_model == "Phone 1"
    params = {"format": "jpeg", "metadata": "keep"}
    response = client.post("/v1/process", params=params, content=data)
    assert response.status_code == 200, response.text
    exif = exif_of(response.content)
    assert (exif[ExifTags.Base.Model], exif.get(EXIF_ORIENTATION, 1)) == ("Phone 1", 1)
    if fmt == "tiff":  # the TIFF's own raster tags describe the TIFF, not the result
        assert not {ExifTags.Base.StripOffsets, ExifTags.Base.ImageWidth} & set(exif)


def test_metadata_keep_leaves_the_thumbnail_of_the_original_out() -> None:
    thumbnail = encoded("jpeg", np.full((8, 8, 3), 77, np.uint8))
    data = encoded("jpeg", upright_picture(), exif=exif_with_thumbnail(thumbnail))
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.IFD1)  # the camera's thumbnail
    kept = open_image(data, max_pixels=MAX).exif_to_keep((48, 32))
    assert kept is not None and thumbnail not in kept
    exif = Image.Exif()
    exif.load(kept)
    assert exif[ExifTags.Base.Make] == "Darkroom"
    assert not exif.get_ifd(ExifTags.IFD.IFD1)


def test_metadata_keep_without_exif_in_gives_none_out(client: TestClient) -> None:
    params = {"format": "jpeg", "metadata": "keep"}
    response = client.post("/v1/process", params=params, content=encoded("png", upright_picture()))
    assert response.status_code == 200, response.text
    assert b"Exif\x00\x00" not in response.content


def test_a_kept_exif_is_written_where_pillow_writes_it() -> None:
    source = open_image(phone_photo(), max_pixels=MAX)
    pixels = source.decode().pixels
    exif = source.exif_to_keep((48, 32))
    assert exif is not None
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85, exif=exif)
    assert encode(pixels, "jpeg", quality=85, exif=exif) == buffer.getvalue()


def test_exif_over_jpeg_s_limit_is_a_named_error() -> None:
    exif = camera_exif()
    exif[ExifTags.Base.ImageDescription] = "x" * 70_000
    data = with_png_exif(encoded("png", upright_picture()), exif.tobytes(), after_pixels=False)
    source = open_image(data, max_pixels=MAX)
    kept = source.exif_to_keep((48, 32))
    with pytest.raises(InvalidParameter, match="metadata: the input's EXIF is"):
        encode(source.decode().pixels, "jpeg", quality=90, exif=kept)
    assert kept is not None and exif_of(encode(upright_picture(), "png", quality=90, exif=kept))


@pytest.mark.parametrize("value", ["all", "", "KEEP"])
def test_metadata_option_is_validated(client: TestClient, value: str) -> None:
    response = client.post("/v1/process", params={"metadata": value}, content=b"not an image")
    assert_error(response, 422, "invalid_parameter", "metadata: Input should be 'strip' or 'keep'")


# --- /v1/info ---------------------------------------------------------------------------------


def test_info_reads_camera_and_time_taken(client: TestClient) -> None:
    info = client.post("/v1/info", content=phone_photo()).json()
    assert info["camera_make"] == "Darkroom"
    assert info["camera_model"] == "Phone 1"
    assert info["taken"] == "2024-05-06T07:08:09+02:00"
    exif = camera_exif()
    del exif.get_ifd(DETAILS)[ExifTags.Base.OffsetTimeOriginal]
    plain = encoded("jpeg", upright_picture(), exif=exif.tobytes())
    assert probe(plain).taken == "2024-05-06T07:08:09"
    exif.get_ifd(DETAILS)[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"
    assert probe(encoded("jpeg", upright_picture(), exif=exif.tobytes())).taken is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize(
    "broken",
    [
        b"Exif\x00\x00XXXXXXXX",  # no TIFF header: Pillow raises on reading it
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(20),  # entries cut short
    ],
)
def test_a_broken_exif_block_is_no_exif(client: TestClient, fmt: str, broken: bytes) -> None:
    data = encoded(fmt, upright_picture(), exif=broken)
    info = client.post("/v1/info", content=data).json()
    assert (info["exif_orientation"], info["camera_make"], info["taken"]) == (1, None, None)
    params = {"metadata": "keep", "format": "png"}
    response = client.post("/v1/process", params=params, content=data)
    assert response.status_code == 200, response.text
    pixels = decode(response.content, max_pixels=MAX).pixels
    assert difference(pixels, upright_picture()) <= TOLERANCE


def test_info_fields_are_null_when_the_file_has_none(client: TestClient) -> None:
    info = client.post("/v1/info", content=encoded("png", upright_picture())).json()
    assert {key: info[key] for key in ("icc_profile", "camera_make", "camera_model", "taken")} == {
        "icc_profile": None,
        "camera_make": None,
        "camera_model": None,
        "taken": None,
    }
    assert (info["frames"], info["bit_depth"], info["colour_space"]) == (1, 8, "RGB")


def test_info_names_the_icc_profile() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("jpeg", "png", "webp", "tiff", "avif", "heic"):
        data = encoded(fmt, upright_picture(), icc_profile=profile)
        assert probe(data).icc_profile == "sRGB built-in", fmt
    broken = encoded("jpeg", upright_picture(), icc_profile=b"not a profile")
    assert probe(broken).icc_profile is None


@pytest.mark.parametrize(
    ("data", "colour_space", "bit_depth"),
    [
        (encoded("jpeg", upright_picture()), "RGB", 8),
        (encoded("png", upright_picture()[:, :, 0].copy()), "grey", 8),
        (encoded("tiff", np.zeros((4, 4), np.uint16)), "grey", 16),
        (png16(np.zeros((2, 2, 3), np.uint16)), "RGB", 16),
        (tiff16(np.zeros((2, 2, 4), np.uint16)), "RGB", 16),
        (encoded("png", np.zeros((4, 4), bool)), "grey", 1),
        (encoded("gif", upright_picture()), "RGB", 8),
    ],
)
def test_info_colour_space_and_bit_depth(data: bytes, colour_space: str, bit_depth: int) -> None:
    info = probe(data)
    assert (info.colour_space, info.bit_depth) == (colour_space, bit_depth)


def test_info_colour_space_of_a_cmyk_jpeg() -> None:
    buffer = io.BytesIO()
    Image.fromarray(upright_picture()).convert("CMYK").save(buffer, "JPEG")
    assert probe(buffer.getvalue()).colour_space == "CMYK"


def test_info_bit_depth_of_ten_bit_heic_and_avif() -> None:
    import pillow_heif

    wide = upright_picture().astype(np.uint16) * 257
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(48, 32), data=wide.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    assert probe(buffer.getvalue()).bit_depth == 10
    # Pillow writes 8-bit AVIF only, and libavif refuses a pixi box its AV1 stream
    # contradicts: the header reader alone sees the edited box.
    avif = encoded("avif", upright_picture())
    assert probe(avif).bit_depth == 8
    start = avif.index(b"pixi")
    channels = avif[start + 8]
    ten_bit = avif[: start + 9] + bytes([10] * channels) + avif[start + 9 + channels :]
    assert _avif_bit_depth(ten_bit) == 10
    assert _avif_bit_depth(b"\x00" * 64) == 8
