"""One processing job, from request bytes to response bytes: the only place a job is wired.

A job first reads the header (``open_job``: format, size and EXIF orientation, no
pixels), which is enough to plan shrink-on-load, pick the output format and estimate
the job's cost. It then takes a slot in its lane (``JobSlots``), decodes once, runs
every step, encodes once, and times each stage for ``/metrics``. The output carries
the input's EXIF only when the job says ``metadata="keep"``.

Lanes: a job that shrinks the image and costs at most ``express_max_cost`` (a
thumbnail) runs in the small ``express`` lane; every other job in the ``heavy`` lane
of ``max_jobs`` slots. A thumbnail therefore never waits for a full-size render's
slot. In either lane a job waits up to the queue timeout for a slot, then gets a 429
whose Retry-After is at least that wait, and longer when the lane's backlog (jobs
waiting and running times the recent mean job duration, per slot) says so.

Histograms: ``Job.histogram`` runs the same decode and pipeline as ``Job.run`` and counts
each colour channel's 256 levels instead of encoding (``level_counts``). It is exact for
the result the pipeline makes: shrink-on-load applies only as it does to any job (a first
``resize`` step), never to the counting.

Cost: the pixels the job decodes (``Source.decode_cost``), the pixels each step reads
and writes (sizes from each operation's ``output_size``) and the pixels it encodes.

Shrink-on-load: an operation that shrinks may declare ``shrink_on_load`` in the
registry (today ``resize``). When such an operation is the pipeline's first step, or
follows only ``scale_free`` steps (point operations, flips, rotations: a live
preview's ``contrast:...|resize:width=640``), ``shrink_target`` asks it what size it
shrinks the image to, the codec decodes at the smallest reduced scale at least that
large (JPEG draft mode), the scale-free steps run on the reduced pixels, and the
shrinking step then runs from them as it would from the original
(``ShrinkOnLoad.run_from``), so the output has the same size either way.
"""

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool

from processor.allocator import trim_above
from processor.codec import (
    ALPHA_FORMATS,
    ColourPolicy,
    MetadataPolicy,
    Source,
    default_output_format,
    encode,
    open_image,
)
from processor.errors import Overloaded
from processor.metrics import LaneStats, Metrics
from processor.operations.alpha import colour_of
from processor.operations.registry import check_output_size, job_context
from processor.pipeline import Pipeline

LaneName = Literal["heavy", "express"]
# Job durations a lane averages for its Retry-After estimate.
RECENT_JOBS = 32
LEVELS = 256
# cv2.calcHist counts in float32, exact up to 2**24 per bin: larger images are counted in bands.
_EXACT_COUNT = 2**24
T = TypeVar("T")


@dataclass(frozen=True)
class JobResult:
    """An encoded result, its format and size, and the seconds spent in each stage."""

    content: bytes
    format: str
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HistogramResult:
    """Counts of each colour channel's 256 levels in a pipeline's result, and its size.

    ``channels`` is ("r", "g", "b") for colour and ("l",) for grey; alpha is not counted.
    Each channel's counts sum to ``width * height``.
    """

    channels: tuple[str, ...]
    counts: list[list[int]]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)


def level_counts(pixels: np.ndarray) -> tuple[tuple[str, ...], list[list[int]]]:
    """Count the 256 levels of each colour channel of an L, LA, RGB or RGBA array."""
    colour = colour_of(pixels)
    channels = ("l",) if colour.ndim == 2 else ("r", "g", "b")
    totals = np.zeros((len(channels), LEVELS), dtype=np.int64)
    rows = max(1, _EXACT_COUNT // max(1, colour.shape[1]))
    for top in range(0, colour.shape[0], rows):
        band = colour[top : top + rows]
        for index in range(len(channels)):
            counted = cv2.calcHist([band], [index], None, [LEVELS], [0, LEVELS])
            totals[index] += np.rint(counted.ravel()).astype(np.int64)
    return channels, totals.tolist()


def shrink_target(pipeline: Pipeline, width: int, height: int) -> tuple[int, int] | None:
    """Return the smallest size a ``width`` x ``height`` image may be decoded at, if smaller.

    None unless a step that declares shrink-on-load shrinks both sides, and every
    step before it is scale-free; the decoder may then decode at a reduced scale no
    smaller than this. For a first step that is the size it shrinks to; after
    scale-free steps, the source scaled by as much as that step shrinks its input.
    """
    size = (width, height)
    for step in pipeline.steps:
        shrink = step.operation.shrink_on_load
        if shrink is not None:
            target = shrink.target(step.params, *size)
            if target is None or size == (width, height):
                return target
            scale = max(target[0] / size[0], target[1] / size[1])
            return min(width, math.ceil(width * scale)), min(height, math.ceil(height * scale))
        if not step.operation.scale_free:
            return None
        size = step.operation.size_of(step.params, *size)
    return None


def run_pipeline(
    pipeline: Pipeline,
    pixels: np.ndarray,
    *,
    max_pixels: int,
    source_size: tuple[int, int] | None = None,
    carries_alpha: bool = False,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Apply each step in turn, refusing any intermediate image over ``max_pixels``.

    ``source_size`` is the full upright (width, height) of an image the decoder
    shrank (see ``shrink_target``): the scale-free steps before the shrinking one
    run on the reduced pixels, and that step runs from them as from the full-size
    image. ``carries_alpha`` says the output format keeps an alpha channel, so
    operations may add one (``rotate``'s transparent fill). ``timings`` collects
    seconds per operation.
    """
    full_size = source_size
    with job_context(max_pixels=max_pixels, output_alpha=carries_alpha):
        for step in pipeline.steps:
            started = time.perf_counter()
            shrink = step.operation.shrink_on_load
            if full_size is not None and shrink is not None:
                pixels = shrink.run_from(pixels, step.params, full_size)
                full_size = None
            else:
                pixels = step.operation(pixels, step.params)
                if full_size is not None:
                    full_size = step.operation.size_of(step.params, *full_size)
            height, width = pixels.shape[:2]
            check_output_size(step.operation.name, width, height)
            if timings is not None:
                timings[step.operation.name] += time.perf_counter() - started
    return pixels


def output_format(pipeline: Pipeline, requested: str | None, source_format: str) -> str:
    """Return the format to encode: the one asked for, else PNG for graphics, else the input's.

    An input format that cannot be written gives ``codec.default_output_format``'s:
    JPEG for HEIC, PNG for the others.
    """
    if requested is not None:
        return requested
    if pipeline.output == "graphic":
        return "png"
    return default_output_format(source_format)


def estimate_cost(
    source: Source, pipeline: Pipeline, at_least: tuple[int, int] | None
) -> tuple[int, int]:
    """Return the job's cost and its result's pixel count, from the header alone.

    The cost counts pixels: decoding (``Source.decode_cost``), each step's input and
    output (the steps up to the shrinking one read the possibly reduced decode) and
    the encoded result.
    """
    cost = source.decode_cost(at_least)
    read_width, read_height = source.decoded_size(at_least)
    width, height = source.size
    reduced = (read_width, read_height) != (width, height)
    for step in pipeline.steps:
        width, height = step.operation.size_of(step.params, width, height)
        if reduced and step.operation.shrink_on_load is None:
            out_width, out_height = step.operation.size_of(step.params, read_width, read_height)
        else:
            out_width, out_height, reduced = width, height, False
        cost += read_width * read_height + out_width * out_height
        read_width, read_height = out_width, out_height
    return cost + width * height, width * height


@dataclass(frozen=True)
class Job:
    """A job whose header is read: its source, decode plan, output format and cost.

    ``cost`` is ``estimate_cost``'s; ``shrinks`` says the result has fewer pixels
    than the source. ``header_seconds`` counts towards the decode stage.
    """

    source: Source
    pipeline: Pipeline
    format: str
    quality: int
    max_pixels: int
    at_least: tuple[int, int] | None
    cost: int
    shrinks: bool
    header_seconds: float
    metadata: MetadataPolicy = "strip"
    colour: ColourPolicy = "srgb"

    @property
    def operation_names(self) -> frozenset[str]:
        """The names of the pipeline's operations, as its timings name them."""
        return frozenset(step.operation.name for step in self.pipeline.steps)

    def processed(self, timings: dict[str, float]) -> np.ndarray:
        """Decode and run the pipeline, adding the seconds of each stage to ``timings``."""
        started = time.perf_counter()
        decoded = self.source.decode(at_least=self.at_least, colour=self.colour)
        timings["decode"] += self.header_seconds + time.perf_counter() - started
        return run_pipeline(
            self.pipeline,
            decoded.pixels,
            max_pixels=self.max_pixels,
            source_size=decoded.size if decoded.reduced else None,
            carries_alpha=self.format in ALPHA_FORMATS,
            timings=timings,
        )

    def run(self) -> JobResult:
        """Decode, run the pipeline and encode (CPU-bound: run it off the loop)."""
        timings: dict[str, float] = defaultdict(float)
        pixels = self.processed(timings)
        started = time.perf_counter()
        height, width = pixels.shape[:2]
        exif = self.source.exif_to_keep((width, height)) if self.metadata == "keep" else None
        icc = self.source.profile_to_keep() if self.colour == "keep" else None
        content = encode(pixels, self.format, quality=self.quality, exif=exif, icc=icc)
        timings["encode"] = time.perf_counter() - started
        return JobResult(content, self.format, width, height, dict(timings))

    def histogram(self) -> HistogramResult:
        """Decode, run the pipeline and count its result's levels (CPU-bound: off the loop)."""
        timings: dict[str, float] = defaultdict(float)
        pixels = self.processed(timings)
        started = time.perf_counter()
        channels, counts = level_counts(pixels)
        timings["histogram"] = time.perf_counter() - started
        height, width = pixels.shape[:2]
        return HistogramResult(channels, counts, width, height, dict(timings))


def open_job(
    data: bytes,
    pipeline: Pipeline,
    *,
    fmt: str | None,
    quality: int,
    max_pixels: int,
    metadata: MetadataPolicy = "strip",
    colour: ColourPolicy = "srgb",
) -> Job:
    """Read the header of ``data`` and plan the job: UnreadableImage, ImageTooLarge or a Job."""
    started = time.perf_counter()
    source = open_image(data, max_pixels=max_pixels)
    at_least = shrink_target(pipeline, *source.size)
    cost, output_pixels = estimate_cost(source, pipeline, at_least)
    width, height = source.size
    return Job(
        source=source,
        pipeline=pipeline,
        format=output_format(pipeline, fmt, source.format),
        quality=quality,
        max_pixels=max_pixels,
        at_least=at_least,
        cost=cost,
        shrinks=output_pixels < width * height,
        header_seconds=time.perf_counter() - started,
        metadata=metadata,
        colour=colour,
    )


def run_job(
    data: bytes,
    pipeline: Pipeline,
    *,
    fmt: str | None,
    quality: int,
    max_pixels: int,
    metadata: MetadataPolicy = "strip",
    colour: ColourPolicy = "srgb",
) -> JobResult:
    """Decode ``data``, run ``pipeline`` and encode the result (CPU-bound: run it off the loop)."""
    job = open_job(
        data,
        pipeline,
        fmt=fmt,
        quality=quality,
        max_pixels=max_pixels,
        metadata=metadata,
        colour=colour,
    )
    return job.run()


class Lane:
    """The job slots of one lane, its counts (shared with ``/metrics``) and recent job durations."""

    def __init__(self, slots: int) -> None:
        self.stats = LaneStats(slots=slots)
        self._free = asyncio.Semaphore(slots)
        self._recent: deque[float] = deque(maxlen=RECENT_JOBS)

    async def take(self, timeout: float) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds; False when none freed in time."""
        self.stats.waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), timeout=timeout)
        except TimeoutError:
            return False
        finally:
            self.stats.waiting -= 1
        self.stats.running += 1
        return True

    def give_back(self) -> None:
        """Free a slot."""
        self.stats.running -= 1
        self._free.release()

    def observe(self, seconds: float) -> None:
        """Record how long one of this lane's jobs ran."""
        self._recent.append(seconds)
        self.stats.finished += 1

    def backlog_seconds(self) -> float:
        """Estimate the seconds until the jobs waiting and running now are done (0: no history)."""
        if not self._recent or not self.stats.slots:
            return 0.0
        mean = math.fsum(self._recent) / len(self._recent)
        return (self.stats.waiting + self.stats.running) * mean / self.stats.slots


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux keeps one per thread)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    # A sandbox that forbids it leaves equal priorities: the lanes still bound the queueing.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)


def _whole_seconds(seconds: float) -> int:
    """Round up to whole seconds, ignoring float noise below a millisecond."""
    return math.ceil(round(seconds, 3))


class JobSlots:
    """Two lanes of job slots: ``heavy`` (``max_jobs``) and ``express`` (cheap, shrinking jobs).

    A job waits up to ``queue_timeout_s`` for a slot of its lane, then Overloaded (429).
    ``express_jobs=0`` sends every job to the heavy lane. Each lane runs its jobs on
    threads of its own; the heavy lane's run ``heavy_nice`` steps below normal priority,
    so when both lanes have work the scheduler gives the cores to the express jobs
    first, and a thumbnail is not slowed down by the renders sharing its cores.
    """

    def __init__(
        self,
        *,
        max_jobs: int,
        queue_timeout_s: float,
        metrics: Metrics,
        express_jobs: int,
        express_max_cost: int,
        heavy_nice: int = 0,
        memory_soft_limit: int = 0,
    ) -> None:
        self.max_jobs = max_jobs
        self.memory_soft_limit = memory_soft_limit
        self.queue_timeout_s = queue_timeout_s
        self.express_max_cost = express_max_cost
        self.metrics = metrics
        self.lanes: dict[LaneName, Lane] = {"heavy": Lane(max_jobs), "express": Lane(express_jobs)}
        for name, lane in self.lanes.items():
            metrics.lanes[name] = lane.stats
        self.executors: dict[LaneName, ThreadPoolExecutor] = {
            "heavy": ThreadPoolExecutor(
                max_jobs,
                thread_name_prefix="heavy-job",
                initializer=lower_thread_priority,
                initargs=(heavy_nice,),
            ),
            "express": ThreadPoolExecutor(max(express_jobs, 1), thread_name_prefix="express-job"),
        }

    def close(self) -> None:
        """Stop the lanes' threads once their jobs are done."""
        for executor in self.executors.values():
            executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, work: Callable[[], T]) -> T:
        """Run a job's work, then give freed memory back if the process is over its soft limit."""
        try:
            return work()
        finally:
            trim_above(self.memory_soft_limit)

    def lane_for(self, job: Job) -> LaneName:
        """Return "express" for a job that shrinks the image within the cost limit, else "heavy"."""
        express = self.lanes["express"].stats.slots > 0
        if express and job.shrinks and job.cost <= self.express_max_cost:
            return "express"
        return "heavy"

    async def acquire(self, lane: LaneName = "heavy") -> None:
        """Take a slot of ``lane``, waiting at most the queue timeout; Overloaded if none frees.

        Retry-After is at least the time waited (rounded up), and longer when the
        lane's backlog is: jobs waiting and running times the recent mean duration,
        over the lane's slots.
        """
        queue = self.lanes[lane]
        if not await queue.take(self.queue_timeout_s):
            retry_after = max(
                1,
                _whole_seconds(self.queue_timeout_s),
                _whole_seconds(queue.backlog_seconds()),
            )
            raise Overloaded(
                f"all {queue.stats.slots} {lane} job slots stayed busy "
                f"for {self.queue_timeout_s} s",
                retry_after=retry_after,
            )

    def release(self, lane: LaneName = "heavy") -> None:
        """Give a slot of ``lane`` back."""
        self.lanes[lane].give_back()

    async def run(self, job: Job) -> JobResult:
        """Run a planned job (``plan``) on its lane's threads once the lane has a free slot."""
        result = await self.in_lane(job, job.run)
        self.metrics.observe_stages(result.timings, job.operation_names)
        return result

    async def histogram(self, job: Job) -> HistogramResult:
        """Count the levels of a planned job's result in a slot of the job's lane."""
        result = await self.in_lane(job, job.histogram)
        self.metrics.observe_stages(result.timings, job.operation_names)
        return result

    async def plan(
        self,
        data: bytes,
        pipeline: Pipeline,
        *,
        fmt: str | None,
        quality: int,
        max_pixels: int,
        metadata: MetadataPolicy = "strip",
        colour: ColourPolicy = "srgb",
    ) -> Job:
        """Read the header and plan the job in a worker thread (``open_job``)."""
        # Pillow's header parsing is cheap for ordinary files but not bounded for
        # crafted ones (PNG text chunks), so it stays off the event loop too.
        return await run_in_threadpool(
            open_job,
            data,
            pipeline,
            fmt=fmt,
            quality=quality,
            max_pixels=max_pixels,
            metadata=metadata,
            colour=colour,
        )

    async def in_lane(self, job: Job, work: Callable[[], T]) -> T:
        """Run ``work`` for ``job`` on its lane's threads once the lane has a free slot."""
        lane = self.lane_for(job)
        await self.acquire(lane)
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.executors[lane], self._run, work)
        finally:
            seconds = time.perf_counter() - started
            self.release(lane)
            self.lanes[lane].observe(seconds)
            self.metrics.observe_job(seconds)
        return result
