"""JPEG draft mode: a pipeline that shrinks first, or after scale-free steps, decodes smaller."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from processor.codec import decode, open_image
from processor.jobs import estimate_cost, run_job, run_pipeline, shrink_target
from processor.operations import all_operations
from processor.pipeline import parse_pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
RETINA = (SAMPLES / "retina.jpg").read_bytes()  # 1411 x 1411
MAX = 50_000_000


def full_then_resize(data: bytes, ops: str) -> np.ndarray:
    pipeline = parse_pipeline(ops, max_steps=5)
    return run_pipeline(pipeline, decode(data, max_pixels=MAX).pixels, max_pixels=MAX)


def drafted(data: bytes, ops: str) -> tuple[np.ndarray, tuple[int, int]]:
    pipeline = parse_pipeline(ops, max_steps=5)
    source = open_image(data, max_pixels=MAX)
    decoded = source.decode(at_least=shrink_target(pipeline, *source.size))
    decoded_size = decoded.pixels.shape[1::-1]
    out = run_pipeline(
        pipeline,
        decoded.pixels,
        max_pixels=MAX,
        source_size=decoded.size if decoded.reduced else None,
    )
    return out, (int(decoded_size[0]), int(decoded_size[1]))


def assert_drafted_like_full_decode(
    ops: str, decoded: tuple[int, int], mean: float, p99: float
) -> None:
    """RETINA drafted to ``decoded`` for ``ops``: the full decode's size and nearly its pixels."""
    out, decoded_size = drafted(RETINA, ops)
    assert decoded_size == decoded
    reference = full_then_resize(RETINA, ops)
    assert out.shape == reference.shape
    difference = np.abs(out.astype(int) - reference.astype(int))
    assert difference.mean() < mean
    assert np.percentile(difference, 99) <= p99


# A reduced decode is ceil(1411 / scale) wide: its last pixel stands for a partial
# block, which stretches the picture by up to a reduced pixel toward the far edge
# (0.35 output pixels at 1/8 here), so the 99th percentile grows on fine detail.
@pytest.mark.parametrize(
    ("ops", "decoded", "p99"),
    [
        ("resize:width=320,height=320,fit=contain", (353, 353), 8),  # the gateway's thumbnail
        ("resize:width=700", (706, 706), 8),  # just over half: 1/2
        ("resize:width=100|grayscale", (177, 177), 40),  # 1/8
        ("resize:width=200,height=100,fit=cover", (353, 353), 8),
    ],
)
def test_draft_decodes_smaller_and_matches_a_full_decode(
    ops: str, decoded: tuple[int, int], p99: int
) -> None:
    # libjpeg's scaled IDCT vs full decode + area average: same picture, small differences.
    assert_drafted_like_full_decode(ops, decoded, 1.6, p99)


@pytest.mark.parametrize(
    "ops",
    [
        "",
        "median:size=3|resize:width=100",  # a filter's size is in pixels: not scale-free
        "grayscale|crop:x=0,y=0,width=700,height=700|resize:width=100",
        "contrast:factor=1.2|resize:width=1411",
        "resize:width=1411",
        "resize:width=2000",
        "rotate",
    ],
)
def test_no_draft_unless_the_pipeline_shrinks_before_any_step_measuring_pixels(ops: str) -> None:
    pipeline = parse_pipeline(ops, max_steps=5)
    assert shrink_target(pipeline, 1411, 1411) is None
    assert not open_image(RETINA, max_pixels=MAX).decode(at_least=None).reduced


def test_size_hint_is_the_resize_target() -> None:
    assert shrink_target(parse_pipeline("resize:width=960", max_steps=5), 1920, 1080) == (960, 540)
    cover = parse_pipeline("resize:width=100,height=100,fit=cover", max_steps=5)
    assert shrink_target(cover, 400, 200) == (200, 100)


def test_png_ignores_the_hint() -> None:
    data = (SAMPLES / "astronaut.png").read_bytes()
    pipeline = parse_pipeline("resize:width=64", max_steps=5)
    source = open_image(data, max_pixels=MAX)
    decoded = source.decode(at_least=shrink_target(pipeline, *source.size))
    assert not decoded.reduced
    assert decoded.size == (512, 512)


def test_draft_respects_exif_orientation() -> None:
    stored = np.zeros((400, 800, 3), np.uint8)
    stored[:, :400] = 255  # left half white on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 clockwise to view: upright it is 400 wide, 800 high
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    out, decoded_size = drafted(buffer.getvalue(), "resize:width=100")
    assert decoded_size == (100, 200)
    assert out.shape == (200, 100, 3)
    assert out[:90].mean() > 240 and out[110:].mean() < 15


def test_the_route_job_uses_draft_and_gives_the_exact_size() -> None:
    pipeline = parse_pipeline("resize:width=333", max_steps=5)
    result = run_job(RETINA, pipeline, fmt=None, quality=90, max_pixels=MAX)
    output, fmt, width, height = result.content, result.format, result.width, result.height
    assert (fmt, width, height) == ("jpeg", 333, 333)
    assert Image.open(io.BytesIO(output)).size == (333, 333)


def test_shrink_on_load_is_declared_by_the_operation() -> None:
    declared = {op.name for op in all_operations() if op.shrink_on_load is not None}
    assert declared == {"resize"}
    scale_free = {op.name for op in all_operations() if op.scale_free}
    assert scale_free == {"grayscale", "invert", "brightness", "contrast", "flip", "rotate"}


def test_the_size_hint_looks_past_scale_free_steps() -> None:
    # 2000x1000 turned a quarter is 1000x2000; 100 wide is a tenth of it: decode a tenth.
    turned = parse_pipeline("rotate:degrees=90|resize:width=100", max_steps=5)
    assert shrink_target(turned, 2000, 1000) == (200, 100)
    toned = parse_pipeline("grayscale|contrast:factor=1.5|resize:width=100", max_steps=5)
    assert shrink_target(toned, 1411, 1411) == (100, 100)
    # Turned 45 degrees with a larger canvas: the decode must still cover the target.
    tilted = parse_pipeline("rotate:degrees=45|resize:width=100", max_steps=5)
    width, height = shrink_target(tilted, 1000, 1000) or (0, 0)
    assert 100 / math.sqrt(2) - 1 <= width <= 100 / math.sqrt(2) + 1 and width == height


# A preview is the edit, then a shrink to at most 640 px: drafted, it must be the same
# size and picture as the full decode (the gateway's live preview of a slider).
@pytest.mark.parametrize(
    ("ops", "decoded", "mean", "p99"),
    [
        ("contrast:factor=1.3|resize:width=320", (353, 353), 1.6, 10),
        ("grayscale|brightness:offset=-20|resize:width=176", (177, 177), 2.0, 40),  # 1/8
        ("flip:axis=horizontal|resize:width=320", (353, 353), 1.6, 8),
        ("rotate:degrees=90|resize:width=320", (353, 353), 1.6, 8),
        # Interpolating a quarter-size image before shrinking: sharp edges move a little.
        ("rotate:degrees=17.5|resize:width=320", (353, 353), 2.5, 40),
    ],
)
def test_scale_free_steps_then_a_shrink_match_a_full_decode(
    ops: str, decoded: tuple[int, int], mean: float, p99: int
) -> None:
    assert_drafted_like_full_decode(ops, decoded, mean, p99)


def test_a_drafted_preview_costs_less_than_the_full_decode() -> None:
    preview = parse_pipeline("contrast:factor=1.3|resize:width=320", max_steps=5)
    full = parse_pipeline("contrast:factor=1.3", max_steps=5)
    source = open_image(RETINA, max_pixels=MAX)
    cost_preview, pixels = estimate_cost(source, preview, shrink_target(preview, *source.size))
    cost_full, _ = estimate_cost(source, full, None)
    assert pixels == 320 * 320
    assert cost_preview < cost_full / 4


def test_a_job_reports_the_time_of_each_stage() -> None:
    pipeline = parse_pipeline("resize:width=64|invert", max_steps=5)
    result = run_job(RETINA, pipeline, fmt="png", quality=90, max_pixels=MAX)
    assert set(result.timings) == {"decode", "resize", "invert", "encode"}
    assert all(seconds >= 0 for seconds in result.timings.values())
