"""Header-only metadata: real samples, EXIF rotation, and every way an upload can be bad."""

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from catalog.errors import ImageTooLarge, UnreadableImage
from catalog.metadata import read_metadata
from catalog.models import ImageRecord, image_id

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LIMIT = 50_000_000

# name: (format, width, height, mode, orientation)
EXPECTED = {
    "astronaut.png": ("png", 512, 512, "RGB", "square"),
    "camera.png": ("png", 512, 512, "L", "square"),
    "chelsea.png": ("png", 451, 300, "RGB", "landscape"),
    "coffee.png": ("png", 600, 400, "RGB", "landscape"),
    "rocket.jpg": ("jpeg", 640, 427, "RGB", "landscape"),
    "hubble_deep_field.jpg": ("jpeg", 1000, 872, "RGB", "landscape"),
    "retina.jpg": ("jpeg", 1411, 1411, "RGB", "square"),
    "grace_hopper.jpg": ("jpeg", 512, 600, "RGB", "portrait"),
}


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_samples_folder_holds_exactly_the_expected_images() -> None:
    images = {p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg")}
    assert images == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_metadata(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    meta = read_metadata(data, max_pixels=LIMIT)
    format, width, height, mode, orientation = EXPECTED[name]
    assert (meta.format, meta.width, meta.height, meta.mode) == (format, width, height, mode)
    assert meta.bytes == len(data)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    assert meta.exif_orientation == 1
    record = ImageRecord.from_meta(meta, name=name)
    assert record.orientation == orientation
    assert record.pixels == width * height
    assert record.aspect == round(width / height, 4)
    assert record.id == meta.sha256[:20] == image_id(meta.sha256)


def test_record_derives_aspect_and_orientation() -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    record = ImageRecord.from_meta(read_metadata(data, max_pixels=LIMIT), name="rocket.jpg")
    assert record.aspect == 1.4988
    assert record.pixels == 273_280
    assert record.created.utcoffset() is not None


@pytest.mark.parametrize(
    ("format", "expected"),
    [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tiff"),
     ("BMP", "bmp")],
)  # fmt: skip
def test_every_supported_format(format: str, expected: str) -> None:
    data = encode(Image.new("RGB", (7, 3), (10, 20, 30)), format)
    meta = read_metadata(data, max_pixels=LIMIT)
    assert (meta.format, meta.width, meta.height) == (expected, 7, 3)


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 30)), (3, (40, 30)), (6, (30, 40)),
                                                    (8, (30, 40)), (5, (30, 40))])  # fmt: skip
def test_exif_orientation_swaps_transposed_photos(orientation: int, size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.new("RGB", (40, 30), (200, 10, 10)), "JPEG", exif=exif)
    meta = read_metadata(data, max_pixels=LIMIT)
    assert meta.exif_orientation == orientation
    assert (meta.width, meta.height) == size


def test_exif_orientation_in_png_header() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (40, 30)), "PNG", exif=exif)
    meta = read_metadata(data, max_pixels=LIMIT)
    assert (meta.exif_orientation, meta.width, meta.height) == (6, 30, 40)


def test_zero_bytes_is_unreadable() -> None:
    with pytest.raises(UnreadableImage, match="zero bytes") as caught:
        read_metadata(b"", max_pixels=LIMIT)
    assert (caught.value.status, caught.value.code) == (415, "unreadable_image")


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnreadableImage, match="not an image"):
        read_metadata(b"hello, this is a text file\n" * 10, max_pixels=LIMIT)


def test_unsupported_format_is_rejected() -> None:
    data = encode(Image.new("RGB", (8, 8)), "PPM")
    with pytest.raises(UnreadableImage, match="not an image"):
        read_metadata(data, max_pixels=LIMIT)


def test_truncated_header_is_unreadable() -> None:
    data = (SAMPLES / "astronaut.png").read_bytes()[:20]
    with pytest.raises(UnreadableImage):
        read_metadata(data, max_pixels=LIMIT)


def png_with_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR is patched to claim width x height (CRC recomputed)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_decompression_bomb_is_too_large() -> None:
    with pytest.raises(ImageTooLarge, match="100000x100000") as caught:
        read_metadata(png_with_size(100_000, 100_000), max_pixels=LIMIT)
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")


def test_pixel_limit_is_inclusive() -> None:
    data = png_with_size(100, 50)
    assert read_metadata(data, max_pixels=5000).width == 100
    with pytest.raises(ImageTooLarge):
        read_metadata(data, max_pixels=4999)


def test_metadata_does_not_decode_pixels() -> None:
    whole = (SAMPLES / "rocket.jpg").read_bytes()
    truncated = whole[:2000]  # headers only: decoding this would fail
    with Image.open(io.BytesIO(truncated)) as image, pytest.raises(OSError):
        image.load()
    meta = read_metadata(truncated, max_pixels=LIMIT)
    assert (meta.format, meta.width, meta.height, meta.mode) == ("jpeg", 640, 427, "RGB")
    assert meta.bytes == 2000


def test_png_with_corrupt_pixel_data_still_reads() -> None:
    data = bytearray(encode(Image.new("RGB", (64, 48), (1, 2, 3)), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\xff" * 8  # garbage in the compressed pixels
    meta = read_metadata(bytes(data), max_pixels=LIMIT)
    assert (meta.width, meta.height) == (64, 48)
