"""Codec: probe, decode and encode real and synthetic images."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from processor.codec import MEDIA_TYPES, OUTPUT_FORMATS, decode, encode, probe
from processor.errors import ImageTooLarge, InvalidParameter, UnreadableImage

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MAX = 50_000_000

SAMPLE_INFO = {
    "astronaut.png": ("png", 512, 512, "RGB"),
    "camera.png": ("png", 512, 512, "L"),
    "chelsea.png": ("png", 451, 300, "RGB"),
    "coffee.png": ("png", 600, 400, "RGB"),
    "rocket.jpg": ("jpeg", 640, 427, "RGB"),
    "hubble_deep_field.jpg": ("jpeg", 1000, 872, "RGB"),
    "retina.jpg": ("jpeg", 1411, 1411, "RGB"),
    "grace_hopper.jpg": ("jpeg", 512, 600, "RGB"),
}


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A real 1x1 PNG whose IHDR claims another size, with a valid CRC."""
    data = bytearray(save(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("name", sorted(SAMPLE_INFO))
def test_probe_and_decode_every_sample(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    fmt, width, height, mode = SAMPLE_INFO[name]
    info = probe(data)
    assert (info.format, info.width, info.height, info.mode) == (fmt, width, height, mode)
    assert info.bytes == len(data)
    assert info.exif_orientation == 1
    decoded = decode(data, max_pixels=MAX)
    assert decoded.format == fmt
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape[:2] == (height, width)
    assert decoded.pixels.ndim == (2 if mode == "L" else 3)
    assert decoded.pixels.flags.c_contiguous


def test_png_round_trip_is_lossless() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (31, 17, 3), dtype=np.uint8)
    for array in (pixels, pixels[:, :, 0].copy(), np.dstack([pixels, pixels[:, :, :1]])):
        data = encode(array, "png", quality=90)
        assert data.startswith(b"\x89PNG")
        assert np.array_equal(decode(data, max_pixels=MAX).pixels, array)


def test_jpeg_round_trip_is_close() -> None:
    original = decode((SAMPLES / "astronaut.png").read_bytes(), max_pixels=MAX).pixels
    data = encode(original, "jpeg", quality=95)
    assert data.startswith(b"\xff\xd8")
    again = decode(data, max_pixels=MAX)
    assert again.format == "jpeg"
    error = np.abs(again.pixels.astype(int) - original.astype(int))
    assert error.mean() < 3


def test_jpeg_is_baseline_and_composites_alpha_onto_white() -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :, 0] = 255  # red, fully transparent on the left half
    rgba[:, 8:, 3] = 255
    data = encode(rgba, "jpeg", quality=95)
    with Image.open(io.BytesIO(data)) as image:
        assert not image.info.get("progressive")
    out = decode(data, max_pixels=MAX).pixels
    assert np.all(np.abs(out[4:12, 1:5].astype(int) - 255) <= 6)  # white
    assert np.all(np.abs(out[4:12, 11:15].astype(int) - [255, 0, 0]) <= 6)  # red
    la = np.dstack([np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)])
    grey = decode(encode(la, "jpeg", quality=90), max_pixels=MAX).pixels
    assert grey.ndim == 2
    assert np.all(grey >= 250)


def test_webp_keeps_alpha() -> None:
    rgba = np.full((8, 8, 4), 200, np.uint8)
    rgba[:, :, 3] = 0
    out = decode(encode(rgba, "webp", quality=90), max_pixels=MAX)
    assert out.format == "webp"
    assert out.pixels.shape == (8, 8, 4)
    assert np.all(out.pixels[:, :, 3] == 0)
    grey = decode(encode(np.zeros((8, 8), np.uint8), "webp", quality=80), max_pixels=MAX)
    assert grey.pixels.shape == (8, 8, 3)


def test_encode_rejects_unknown_format() -> None:
    with pytest.raises(InvalidParameter, match="format"):
        encode(np.zeros((2, 2), np.uint8), "gif", quality=90)
    assert OUTPUT_FORMATS == ("jpeg", "png", "webp", "avif")
    assert MEDIA_TYPES["png"] == "image/png"


def test_zero_bytes_is_unreadable() -> None:
    with pytest.raises(UnreadableImage, match="empty body"):
        decode(b"", max_pixels=MAX)
    with pytest.raises(UnreadableImage, match="empty body"):
        probe(b"")


def test_random_bytes_are_not_an_image() -> None:
    junk = np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnreadableImage, match="not an image") as caught:
        decode(junk, max_pixels=MAX)
    assert caught.value.status == 415
    with pytest.raises(UnreadableImage, match="not an image"):
        probe(b"hello, world")


def test_truncated_jpeg_is_unreadable() -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    with pytest.raises(UnreadableImage, match="truncated"):
        decode(data[: len(data) // 2], max_pixels=MAX)


def test_truncated_png_is_unreadable() -> None:
    data = (SAMPLES / "coffee.png").read_bytes()
    with pytest.raises(UnreadableImage):
        decode(data[: len(data) // 2], max_pixels=MAX)


def test_unsupported_format_is_named() -> None:
    data = save(Image.new("RGB", (4, 4)), "ICO")
    with pytest.raises(UnreadableImage, match="unsupported image format ICO"):
        decode(data, max_pixels=MAX)


def test_decompression_bomb_is_refused_from_the_header() -> None:
    data = bomb_png()
    info = probe(data)
    assert (info.width, info.height) == (100_000, 100_000)
    with pytest.raises(ImageTooLarge, match="100000x100000") as caught:
        decode(data, max_pixels=MAX)
    assert caught.value.status == 413


def test_max_pixels_is_inclusive() -> None:
    data = encode(np.zeros((10, 10), np.uint8), "png", quality=90)
    assert decode(data, max_pixels=100).pixels.shape == (10, 10)
    with pytest.raises(ImageTooLarge):
        decode(data, max_pixels=99)


def exif_rotated_jpeg() -> tuple[bytes, np.ndarray]:
    """A 4 wide x 2 high JPEG stored sideways, with EXIF orientation 6."""
    stored = np.zeros((2, 4, 3), np.uint8)
    stored[:, :2] = 255  # left half white, right half black, on disk
    image = Image.fromarray(np.repeat(np.repeat(stored, 8, axis=0), 8, axis=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(image, "JPEG", quality=100, exif=exif.tobytes()), stored


def test_exif_orientation_6_is_applied_on_decode() -> None:
    data, _ = exif_rotated_jpeg()
    info = probe(data)
    assert info.exif_orientation == 6
    assert (info.width, info.height) == (16, 32)  # as a person sees it
    pixels = decode(data, max_pixels=MAX).pixels
    assert pixels.shape == (32, 16, 3)
    # Orientation 6 means "rotate 90 clockwise to view": the white left half goes on top.
    assert pixels[:16].mean() > 240
    assert pixels[16:].mean() < 15


def test_gif_decodes_first_frame() -> None:
    frames = [Image.new("P", (6, 5), color) for color in (1, 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert probe(data).format == "gif"
    decoded = decode(data, max_pixels=MAX)
    assert decoded.format == "gif"
    assert decoded.pixels.shape == (5, 6, 3)
    assert np.all(decoded.pixels == [255, 0, 0])


def test_tiff_and_bmp_decode() -> None:
    pixels = np.random.default_rng(6).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    for fmt in ("TIFF", "BMP"):
        data = save(Image.fromarray(pixels), fmt)
        decoded = decode(data, max_pixels=MAX)
        assert decoded.format == fmt.lower()
        assert np.array_equal(decoded.pixels, pixels)


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("1", (4, 5)), ("LA", (4, 5, 2)), ("RGBA", (4, 5, 4)), ("CMYK", (4, 5, 3)), ("P", (4, 5, 3))],
)
def test_modes_are_normalised(mode: str, shape: tuple[int, ...]) -> None:
    fmt = "TIFF" if mode in ("CMYK", "LA") else "PNG"
    data = save(Image.new(mode, (5, 4)), fmt)
    assert decode(data, max_pixels=MAX).pixels.shape == shape


def test_palette_with_transparency_becomes_rgba() -> None:
    image = Image.new("P", (3, 2), 0)
    image.putpalette([10, 20, 30] * 256)
    data = save(image, "PNG", transparency=0)
    pixels = decode(data, max_pixels=MAX).pixels
    assert pixels.shape == (2, 3, 4)
    assert np.all(pixels[:, :, 3] == 0)


def test_sixteen_bit_grey_keeps_black_mid_grey_and_white() -> None:
    wide = np.array([[0, 257 * 128, 65535]], np.uint16)
    data = save(Image.fromarray(wide), "PNG")
    assert decode(data, max_pixels=MAX).pixels.tolist() == [[0, 128, 255]]
