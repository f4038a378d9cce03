"""One processing job, from request bytes to response bytes: the only place a job is wired.

A job takes a job slot (``JobSlots``: at most ``max_jobs`` at once; excess waits up to
the queue timeout, then 429), reads the header, plans shrink-on-load, decodes once,
runs every step, encodes once, and times each stage for ``/metrics``.

Shrink-on-load: an operation that shrinks may declare ``shrink_on_load`` in the
registry (today ``resize``). When such an operation is the pipeline's first step,
``shrink_target`` asks it what size it shrinks the upright image to, the codec
decodes at the smallest reduced scale at least that large (JPEG draft mode), and the
step then runs from the reduced pixels as it would from the original
(``ShrinkOnLoad.run_from``), so the output has the same size either way.
"""

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from processor.codec import OUTPUT_FORMATS, encode, open_image
from processor.errors import Overloaded
from processor.metrics import Metrics
from processor.operations.registry import check_output_size, pixel_limit
from processor.pipeline import Pipeline


@dataclass(frozen=True)
class JobResult:
    """An encoded result, its format and size, and the seconds spent in each stage."""

    content: bytes
    format: str
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)


def shrink_target(pipeline: Pipeline, width: int, height: int) -> tuple[int, int] | None:
    """Return the size the first step shrinks a ``width`` x ``height`` image to, if it may.

    None unless the first step's operation declares shrink-on-load and shrinks both
    sides; the decoder may then decode at a reduced scale no smaller than this.
    """
    if not pipeline.steps:
        return None
    first = pipeline.steps[0]
    shrink = first.operation.shrink_on_load
    return None if shrink is None else shrink.target(first.params, width, height)


def run_pipeline(
    pipeline: Pipeline,
    pixels: np.ndarray,
    *,
    max_pixels: int,
    source_size: tuple[int, int] | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Apply each step in turn, refusing any intermediate image over ``max_pixels``.

    ``source_size`` is the full upright (width, height) of an image the decoder
    shrank for the first step (see ``shrink_target``); that step then runs from the
    reduced pixels as from the original. ``timings`` collects seconds per operation.
    """
    with pixel_limit(max_pixels):
        for number, step in enumerate(pipeline.steps):
            started = time.perf_counter()
            shrink = step.operation.shrink_on_load
            if number == 0 and source_size is not None and shrink is not None:
                pixels = shrink.run_from(pixels, step.params, source_size)
            else:
                pixels = step.operation(pixels, step.params)
            height, width = pixels.shape[:2]
            check_output_size(step.operation.name, width, height)
            if timings is not None:
                timings[step.operation.name] += time.perf_counter() - started
    return pixels


def output_format(pipeline: Pipeline, requested: str | None, source_format: str) -> str:
    """Return the format to encode: the one asked for, else PNG for graphics, else the input's."""
    if requested is not None:
        return requested
    if pipeline.output == "graphic" or source_format not in OUTPUT_FORMATS:
        return "png"
    return source_format


def run_job(
    data: bytes, pipeline: Pipeline, *, fmt: str | None, quality: int, max_pixels: int
) -> JobResult:
    """Decode ``data``, run ``pipeline`` and encode the result (CPU-bound: run it off the loop)."""
    timings: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    source = open_image(data, max_pixels=max_pixels)
    decoded = source.decode(at_least=shrink_target(pipeline, *source.size))
    timings["decode"] = time.perf_counter() - started
    pixels = run_pipeline(
        pipeline,
        decoded.pixels,
        max_pixels=max_pixels,
        source_size=decoded.size if decoded.reduced else None,
        timings=timings,
    )
    out_fmt = output_format(pipeline, fmt, decoded.format)
    started = time.perf_counter()
    content = encode(pixels, out_fmt, quality=quality)
    timings["encode"] = time.perf_counter() - started
    height, width = pixels.shape[:2]
    return JobResult(content, out_fmt, width, height, dict(timings))


class JobSlots:
    """At most ``max_jobs`` jobs at once; a job waits ``queue_timeout_s`` for a slot, then 429."""

    def __init__(self, *, max_jobs: int, queue_timeout_s: float, metrics: Metrics) -> None:
        self.max_jobs = max_jobs
        self.queue_timeout_s = queue_timeout_s
        self.metrics = metrics
        self._slots = asyncio.Semaphore(max_jobs)

    async def acquire(self) -> None:
        """Take a slot, waiting at most the queue timeout; Overloaded when none frees in time."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.queue_timeout_s)
        except TimeoutError:
            raise Overloaded(
                f"all {self.max_jobs} job slots stayed busy for {self.queue_timeout_s} s"
            ) from None

    def release(self) -> None:
        """Give a slot back."""
        self._slots.release()

    async def run(
        self, data: bytes, pipeline: Pipeline, *, fmt: str | None, quality: int, max_pixels: int
    ) -> JobResult:
        """Run one job in a worker thread once a slot is free; Overloaded if none frees in time."""
        await self.acquire()
        self.metrics.jobs_in_flight += 1
        started = time.perf_counter()
        try:
            result = await run_in_threadpool(
                run_job, data, pipeline, fmt=fmt, quality=quality, max_pixels=max_pixels
            )
        finally:
            self.release()
            self.metrics.jobs_in_flight -= 1
            self.metrics.observe_job(time.perf_counter() - started)
        self.metrics.observe_stages(result.timings)
        return result
