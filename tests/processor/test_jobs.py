"""Jobs before any pixel is decoded: cost estimates, lanes and the Retry-After backlog."""

import asyncio
import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from processor.codec import open_image
from processor.errors import Overloaded
from processor.jobs import Job, JobSlots, open_job
from processor.metrics import Metrics
from processor.operations import all_operations
from processor.pipeline import parse_pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MAX = 50_000_000
THUMBNAIL = "resize:width=320,height=320,fit=contain"


def image_bytes(width: int, height: int, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, fmt, **options)
    return buffer.getvalue()


PHOTO = image_bytes(4000, 3000, "JPEG")  # 12 megapixels
GRAPHIC = image_bytes(4000, 3000, "PNG")


def job(data: bytes, ops: str) -> Job:
    pipeline = parse_pipeline(ops, max_steps=5)
    return open_job(data, pipeline, fmt=None, quality=90, max_pixels=MAX)


def slots(*, max_jobs: int = 1, express_jobs: int = 2, timeout: float = 0.05) -> JobSlots:
    return JobSlots(
        max_jobs=max_jobs,
        queue_timeout_s=timeout,
        metrics=Metrics(),
        express_jobs=express_jobs,
        express_max_cost=10_000_000,
    )


def test_a_jpeg_thumbnail_costs_the_reduced_decode_and_the_small_steps() -> None:
    thumbnail = job(PHOTO, THUMBNAIL)
    # Decoded at 1/8 (500 x 375); the entropy decoding still reads every block: a third.
    decode = 12_000_000 // 3 + 500 * 375
    resize = 500 * 375 + 320 * 240
    encode = 320 * 240
    assert thumbnail.cost == decode + resize + encode
    assert thumbnail.shrinks
    assert thumbnail.format == "jpeg"
    assert slots().lane_for(thumbnail) == "express"


@pytest.mark.parametrize(
    ("data", "ops", "cost", "shrinks"),
    [
        (PHOTO, "", 12_000_000 * 2, False),  # a full-size re-encode
        (PHOTO, "grayscale", 12_000_000 * 4, False),
        # PNG has no reduced decode: the thumbnail decodes all 12 megapixels.
        (GRAPHIC, THUMBNAIL, 12_000_000 * 2 + 320 * 240 * 2, True),
        # Enlarged again after the thumbnail: bigger than the source.
        (PHOTO, f"{THUMBNAIL}|resize:width=8000", None, False),
    ],
)
def test_full_size_and_expensive_jobs_take_the_heavy_lane(
    data: bytes, ops: str, cost: int | None, shrinks: bool
) -> None:
    planned = job(data, ops)
    if cost is not None:
        assert planned.cost == cost
    assert planned.shrinks is shrinks
    assert slots().lane_for(planned) == "heavy"


def test_without_express_slots_every_job_is_heavy() -> None:
    assert slots(express_jobs=0).lane_for(job(PHOTO, THUMBNAIL)) == "heavy"


def test_open_job_picks_the_output_format_from_the_header() -> None:
    assert job(PHOTO, "gradient_x").format == "png"
    assert job(GRAPHIC, "").format == "png"
    planned = open_job(
        PHOTO, parse_pipeline("", max_steps=5), fmt="webp", quality=90, max_pixels=MAX
    )
    assert planned.format == "webp"


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("target", [None, (700, 700), (352, 352), (176, 176), (90, 40), (40, 90)])
def test_decoded_size_is_the_size_decode_gives(
    orientation: int, target: tuple[int, int] | None
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes(1411, 1000, "JPEG", exif=exif.tobytes())
    source = open_image(data, max_pixels=MAX)
    pixels = source.decode(at_least=target).pixels
    assert source.decoded_size(target) == (pixels.shape[1], pixels.shape[0])


def test_every_operation_declares_the_size_it_gives() -> None:
    image = np.zeros((25, 40, 3), np.uint8)
    extra = {
        "resize": ["resize:width=64", "resize:width=20,height=20,fit=cover", "resize:height=9"],
        "crop": ["crop:x=3,y=4,width=16,height=8"],
        "rotate": [
            "rotate",
            "rotate:degrees=30",
            "rotate:degrees=90,expand=false",
            "rotate:degrees=-45",
        ],
    }
    for op in all_operations():
        for text in extra.get(op.name, [op.name]):
            step = parse_pipeline(text, max_steps=1).steps[0]
            out = step.operation(image, step.params)
            assert step.operation.size_of(step.params, 40, 25) == (out.shape[1], out.shape[0]), text


def test_retry_after_counts_the_jobs_waiting_and_running() -> None:
    async def scenario() -> list[int]:
        jobs = slots(max_jobs=1, timeout=0.3)
        await jobs.acquire()  # the only heavy slot is busy
        jobs.lanes["heavy"].observe(1.0)  # and jobs have taken a second each
        waiters = [asyncio.create_task(jobs.acquire()) for _ in range(3)]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(result, Overloaded) for result in results)
        return [result.retry_after or 0 for result in results if isinstance(result, Overloaded)]

    # The first refused sees two still waiting and one running: 3 jobs x 1 s on 1 slot;
    # the next sees one waiting, the last only the running job.
    assert sorted(asyncio.run(scenario())) == [1, 2, 3]


def current_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_heavy_jobs_run_on_threads_below_the_express_lane_s_priority() -> None:
    lanes = JobSlots(
        max_jobs=1,
        queue_timeout_s=0.05,
        metrics=Metrics(),
        express_jobs=1,
        express_max_cost=10_000_000,
        heavy_nice=7,
    )
    try:
        express = lanes.executors["express"].submit(current_nice).result()
        heavy = lanes.executors["heavy"].submit(current_nice).result()
    finally:
        lanes.close()
    assert express == current_nice()
    assert heavy == min(19, express + 7)


def test_freed_memory_is_given_back_only_over_the_soft_limit() -> None:
    from processor.allocator import resident_bytes, trim_above

    resident = resident_bytes()
    assert resident > 10 * 1024 * 1024  # an interpreter with numpy, OpenCV and Pillow
    assert not trim_above(0)  # 0: never
    assert not trim_above(resident * 4)
    assert trim_above(1)
