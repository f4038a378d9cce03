"""What converting an embedded ICC profile to sRGB adds to a job, against a 15 % target.

Run from the repository root: ``.venv/bin/python bench/colour.py`` (about a minute).
In-process only, nothing listens on a port.

The photo is ``samples/rocket.jpg`` cut and upscaled to 1920x1080, saved as a JPEG
(quality 90) twice: untagged, and tagged Display P3 (the profile iPhones embed,
written by ``tests/colour_profiles.py``). Every row is the median of ``RUNS`` runs,
the variants of a table interleaved round by round so that load from other processes
on this shared machine falls on all of them alike, after ``tune_malloc()`` and with
one OpenCV thread, as the service runs.

1. ``processor.jobs.run_job`` with the pipeline ``grayscale`` on both files: the job
   as the service runs it today (the two match until codec.py converts on decode).
2. The same job composed from the processor's public functions (decode, pipeline,
   encode) without and with ``colour.to_srgb`` after the decode: the cost of the
   conversion as the codec will pay it, and its ratio to the 15 % target.
3. Where that cost comes from: ``to_srgb`` (OpenCV for a matrix/TRC profile),
   LittleCMS on the same array (Pillow's ``ImageCms``, the general path), and the
   cheapest per-pixel pass OpenCV has (one ``cv2.LUT``), per megapixel.
4. The same for ``resize:width=480``: shrink-on-load decodes at 1/4 scale, and the
   conversion runs on those reduced pixels.
"""

import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).resolve().parents[1]
# This script is bench/colour.py: drop its folder from the path so that ``processor``
# means the service package, and import helpers as ``bench.*`` and ``tests.*``.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "services" / "processor"))

from bench._processor_photos import _cut  # noqa: E402
from processor import colour  # noqa: E402
from processor.allocator import tune_malloc  # noqa: E402
from processor.codec import encode, open_image  # noqa: E402
from processor.jobs import run_job, run_pipeline, shrink_target  # noqa: E402
from processor.pipeline import Pipeline, parse_pipeline  # noqa: E402
from tests.colour_profiles import DISPLAY_P3  # noqa: E402

RUNS = 40
TARGET = 0.15
QUALITY = 80
MAX_PIXELS = 50_000_000
SIZE = (1920, 1080)


def photos() -> tuple[bytes, bytes]:
    """The 1080p photo as JPEG bytes: untagged, and tagged Display P3."""
    pixels = _cut(np.asarray(Image.open(ROOT / "samples" / "rocket.jpg").convert("RGB")), SIZE)
    files = []
    for icc in (None, DISPLAY_P3):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90, icc_profile=icc)
        files.append(buffer.getvalue())
    return files[0], files[1]


def interleaved(calls: dict[str, Callable[[], object]], runs: int = RUNS) -> dict[str, float]:
    """Median milliseconds of each call, the calls taking turns round by round."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in seconds.items()}


def composed_job(data: bytes, pipeline: Pipeline, icc: bytes | None) -> bytes:
    """Decode, convert from ``icc`` to sRGB (None: no conversion), run and encode."""
    source = open_image(data, max_pixels=MAX_PIXELS)
    at_least = shrink_target(pipeline, *source.size)
    decoded = source.decode(at_least=at_least)
    pixels = decoded.pixels
    pixels = colour.to_srgb(pixels, icc)
    pixels = run_pipeline(
        pipeline,
        pixels,
        max_pixels=MAX_PIXELS,
        source_size=decoded.size if decoded.reduced else None,
    )
    return encode(pixels, source.format, quality=QUALITY)


def littlecms_converter(icc: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """LittleCMS through Pillow with colour.py's intent and flags, array in and out."""
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=colour.INTENT,
        flags=colour.FLAGS,
    )

    def convert(pixels: np.ndarray) -> np.ndarray:
        image = Image.fromarray(pixels)
        transform.apply_in_place(image)
        return np.asarray(image)

    return convert


def main() -> None:
    tune_malloc()
    cv2.setNumThreads(1)
    untagged, tagged = photos()
    grayscale = parse_pipeline("grayscale", max_steps=10)
    shrink = parse_pipeline("resize:width=480", max_steps=10)
    decoded = open_image(tagged, max_pixels=MAX_PIXELS).decode().pixels
    megapixels = decoded.shape[0] * decoded.shape[1] / 1e6
    littlecms = littlecms_converter(DISPLAY_P3)
    identity = np.arange(256, dtype=np.uint8)
    fast, reference = colour.to_srgb(decoded, DISPLAY_P3), littlecms(decoded)
    disagree = np.abs(fast.astype(np.int16) - reference.astype(np.int16))

    def job(data: bytes) -> Callable[[], object]:
        return lambda: run_job(data, grayscale, fmt=None, quality=QUALITY, max_pixels=MAX_PIXELS)

    # The codec has the profile from the header it has already read: no cost to time.
    icc = Image.open(io.BytesIO(tagged)).info["icc_profile"]

    def composed(pipeline: Pipeline, convert: bool) -> Callable[[], object]:
        return lambda: composed_job(tagged, pipeline, icc if convert else None)

    print(f"photo: samples/rocket.jpg upscaled to {SIZE[0]}x{SIZE[1]}, JPEG q90; median of {RUNS}")
    print(f"profile: {colour.describe(DISPLAY_P3)}, {len(DISPLAY_P3)} bytes\n")

    jobs = interleaved({"untagged": job(untagged), "tagged": job(tagged)})
    print("1. run_job, pipeline grayscale")
    for name, ms in jobs.items():
        print(f"   {name:<40} {ms:7.2f} ms")

    full = interleaved(
        {
            "without conversion": composed(grayscale, False),
            "with colour.to_srgb": composed(grayscale, True),
            "to_srgb alone": lambda: colour.to_srgb(decoded, DISPLAY_P3),
            "LittleCMS alone": lambda: littlecms(decoded),
            "one cv2.LUT pass": lambda: cv2.LUT(decoded, identity),
        }
    )
    base = full["without conversion"]
    added = full["with colour.to_srgb"] - base
    print("\n2. decode + grayscale + encode, composed from the processor's functions")
    print(f"   {'without conversion':<40} {base:7.2f} ms")
    print(f"   {'with colour.to_srgb':<40} {full['with colour.to_srgb']:7.2f} ms")
    verdict = "meets" if added / base <= TARGET else "misses"
    print(f"   added: {added:.2f} ms = {added / base:+.0%} of the job ({verdict} the {TARGET:.0%})")

    print(f"\n3. the conversion on the decoded {decoded.shape[1]}x{decoded.shape[0]} array")
    for name in ("to_srgb alone", "LittleCMS alone", "one cv2.LUT pass"):
        ms = full[name]
        print(f"   {name:<40} {ms:7.2f} ms  {ms / megapixels:5.2f} ms/MP  {ms / base:5.0%} of job")
    print(
        f"   to_srgb vs LittleCMS: {full['LittleCMS alone'] / full['to_srgb alone']:.1f}x faster,"
        f" max {int(disagree.max())} code value apart,"
        f" {np.count_nonzero(disagree.max(axis=2)) / disagree.shape[0] / disagree.shape[1]:.1%}"
        " of pixels differ"
    )
    budget = TARGET * base
    print(
        f"   budget for 15 %: {budget:.2f} ms = {budget / full['one cv2.LUT pass']:.1f} LUT passes;"
        " a matrix conversion needs three (to linear, 3x3 matrix, back to sRGB)"
    )

    reduced = interleaved(
        {
            "without conversion": composed(shrink, False),
            "with colour.to_srgb": composed(shrink, True),
        }
    )
    small = reduced["without conversion"]
    extra = reduced["with colour.to_srgb"] - small
    source = open_image(tagged, max_pixels=MAX_PIXELS)
    width, height = source.decoded_size(shrink_target(shrink, *source.size))
    print(f"\n4. resize:width=480 (shrink-on-load: converts the {width}x{height} draft decode)")
    print(f"   {'without conversion':<40} {small:7.2f} ms")
    print(f"   {'with colour.to_srgb':<40} {reduced['with colour.to_srgb']:7.2f} ms")
    print(f"   added: {extra:.2f} ms = {extra / small:+.0%} of the job")


if __name__ == "__main__":
    main()
