"""The OpenCV JPEG path of the codec gives exactly Pillow's pixels and bytes.

OpenCV and Pillow drive the same libjpeg-turbo with the same settings (islow
DCT, fancy upsampling, 4:2:0 chroma, standard tables), so the tolerance is
zero: every comparison here is exact. Pillow itself is the oracle.
"""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from processor.codec import (
    Decoded,
    _decode_jpeg_with_opencv,
    _upright,
    decode,
    encode,
    open_image,
    probe,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
JPEGS = sorted(p.name for p in SAMPLES.glob("*.jpg"))
MAX = 50_000_000
RNG = np.random.default_rng(3)


def decode_hinted(data: bytes, hint: Callable[[int, int], tuple[int, int]]) -> Decoded:
    """Decode at the reduced scale ``hint`` asks for, given the upright size."""
    source = open_image(data, max_pixels=MAX)
    return source.decode(at_least=hint(*source.size), colour="keep")


def stored_colours(data: bytes) -> Decoded:
    """Decode as stored (no colour conversion), which is what Pillow's own decode gives."""
    return open_image(data, max_pixels=MAX).decode(colour="keep")


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pillow_decode(data: bytes, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Pillow's own decode, draft and EXIF transpose: the reference."""
    opened = Image.open(io.BytesIO(data))
    if draft is not None:
        opened.draft(opened.mode if opened.mode in ("L", "RGB") else None, draft)
    image = ImageOps.exif_transpose(opened)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image)


def smooth_noise(height: int, width: int, channels: int) -> np.ndarray:
    """Noise plus gradients: detail at every scale, like a photo."""
    ramp = np.add.outer(np.arange(height), np.arange(width)) * 255 // (height + width)
    noise = RNG.integers(-40, 40, (height, width, channels))
    pixels = np.clip(ramp[:, :, None] + noise, 0, 255).astype(np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels


@pytest.mark.parametrize("name", JPEGS)
def test_sample_jpegs_decode_to_pillows_pixels(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    image = Image.open(io.BytesIO(data))
    assert _decode_jpeg_with_opencv(data, image, None) is not None  # the fast path ran
    assert np.array_equal(stored_colours(data).pixels, pillow_decode(data))


@pytest.mark.parametrize("name", JPEGS)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_sample_jpegs_reduced_decode_equals_pillows_draft(name: str, scale: int) -> None:
    data = (SAMPLES / name).read_bytes()
    width, height = Image.open(io.BytesIO(data)).size
    target = (width // scale, height // scale)
    decoded = decode_hinted(data, lambda w, h: target)
    expected = pillow_decode(data, draft=target)
    assert decoded.pixels.shape == ((height + scale - 1) // scale, (width + scale - 1) // scale, 3)
    assert np.array_equal(decoded.pixels, expected)
    assert decoded.size == (width, height)


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((37, 53, 3), {"quality": 90}),  # odd sizes: partial MCUs at both edges
        ((64, 48, 3), {"quality": 75, "subsampling": 0}),  # 4:4:4
        ((50, 70, 3), {"quality": 95, "subsampling": 1}),  # 4:2:2
        ((33, 41, 3), {"quality": 85, "progressive": True}),
        ((45, 31, 1), {"quality": 80}),  # grey
        ((40, 40, 1), {"quality": 60, "progressive": True, "optimize": True}),
    ],
)
def test_synthetic_jpegs_decode_to_pillows_pixels(
    shape: tuple[int, int, int], options: dict[str, object]
) -> None:
    pixels = smooth_noise(*shape)
    data = save(Image.fromarray(pixels), "JPEG", **options)
    out = stored_colours(data).pixels
    assert out.ndim == pixels.ndim
    assert np.array_equal(out, pillow_decode(data))
    small = decode_hinted(data, lambda w, h: (w // 2, h // 2)).pixels
    assert np.array_equal(small, pillow_decode(data, draft=(shape[1] // 2, shape[0] // 2)))


def test_grey_jpeg_stays_two_dimensional() -> None:
    grey = smooth_noise(24, 40, 1)
    data = save(Image.fromarray(grey), "JPEG", quality=90)
    assert probe(data).mode == "L"
    pixels = stored_colours(data).pixels
    assert pixels.shape == (24, 40)
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(data))))


def oriented_jpeg(orientation: int, mode: str) -> bytes:
    """A 24 x 16 JPEG (distinct corners, so every flip and turn shows) with an EXIF orientation."""
    pixels = smooth_noise(16, 24, 1 if mode == "L" else 3)
    image = Image.fromarray(pixels)
    if mode == "CMYK":
        image = image.convert("CMYK")
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(image, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_exif_orientations_match_pillows_exif_transpose(orientation: int, mode: str) -> None:
    data = oriented_jpeg(orientation, mode)
    decoded = stored_colours(data)
    expected = pillow_decode(data)
    assert decoded.pixels.shape == expected.shape
    assert np.array_equal(decoded.pixels, expected)
    assert decoded.pixels.flags.c_contiguous
    assert decoded.size == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_reduced_decode_of_a_sideways_jpeg_uses_the_stored_sides(orientation: int) -> None:
    data = oriented_jpeg(orientation, "RGB")  # stored 24 x 16, upright 16 x 24
    decoded = decode_hinted(data, lambda w, h: (w // 2, h // 2))
    assert decoded.size == (16, 24)
    assert decoded.pixels.shape == (12, 8, 3)
    assert np.array_equal(decoded.pixels, pillow_decode(data, draft=(12, 8)))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_upright_matches_pillow_for_every_channel_count(orientation: int, channels: int) -> None:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    pixels = RNG.integers(0, 256, (5, 7, channels), dtype=np.uint8)
    pixels = pixels[:, :, 0] if channels == 1 else pixels
    image = Image.fromarray(pixels, mode)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(image))
    out = _upright(pixels, orientation)
    assert out.shape == expected.shape
    assert np.array_equal(out, expected)


def test_cmyk_jpeg_falls_back_to_pillow() -> None:
    data = oriented_jpeg(1, "CMYK")
    image = Image.open(io.BytesIO(data))
    assert image.mode == "CMYK"
    assert _decode_jpeg_with_opencv(data, image, None) is None
    pixels = stored_colours(data).pixels
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_jpeg_without_its_end_marker_is_left_to_pillow() -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    assert _decode_jpeg_with_opencv(data[:-2], Image.open(io.BytesIO(data)), None) is None


@pytest.mark.parametrize("quality", [1, 50, 80, 90, 100])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_encode_is_byte_for_byte_pillows(quality: int, channels: int) -> None:
    pixels = smooth_noise(41, 67, channels)
    expected = save(Image.fromarray(pixels), "JPEG", quality=quality)
    assert encode(pixels, "jpeg", quality=quality) == expected


@pytest.mark.parametrize("name", JPEGS)
def test_sample_reencode_is_byte_for_byte_pillows(name: str) -> None:
    pixels = decode((SAMPLES / name).read_bytes(), max_pixels=MAX).pixels
    assert encode(pixels, "jpeg", quality=85) == save(Image.fromarray(pixels), "JPEG", quality=85)
