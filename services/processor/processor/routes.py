"""HTTP routes of the processor: operations, process, info, health and metrics."""

import asyncio
import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from processor.codec import MEDIA_TYPES, OUTPUT_FORMATS, decode, encode, probe
from processor.config import Settings, get_settings
from processor.errors import BodyTooLarge, Overloaded
from processor.metrics import Metrics
from processor.operations import all_operations
from processor.pipeline import Pipeline, parse_pipeline, run_pipeline

SettingsDep = Annotated[Settings, Depends(get_settings)]
OutputFormat = Literal["jpeg", "png", "webp"]

router = APIRouter()


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, raising BodyTooLarge as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
    return bytes(body)


def _process(
    data: bytes, pipeline: Pipeline, fmt: str | None, quality: int, max_pixels: int
) -> tuple[bytes, str, int, int]:
    """Decode, run the pipeline and encode; CPU-bound, so it runs in a worker thread."""
    decoded = decode(data, max_pixels=max_pixels, size_hint=pipeline.size_hint)
    pixels = run_pipeline(
        pipeline,
        decoded.pixels,
        max_pixels=max_pixels,
        source_size=decoded.size if decoded.reduced else None,
    )
    if fmt is None:
        if pipeline.output == "graphic":
            fmt = "png"
        else:
            fmt = decoded.format if decoded.format in OUTPUT_FORMATS else "png"
    height, width = pixels.shape[:2]
    return encode(pixels, fmt, quality=quality), fmt, width, height


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Report that the service is up."""
    return {"status": "ok", "service": "processor"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Expose Prometheus metrics."""
    state: Metrics = request.app.state.metrics
    return PlainTextResponse(state.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/operations")
async def list_operations() -> list[dict[str, Any]]:
    """List every operation with its summary, output kind and parameter schema."""
    return [
        {
            "name": op.name,
            "summary": op.summary,
            "output": op.output,
            "params": op.params.model_json_schema(),
        }
        for op in all_operations()
    ]


@router.post("/v1/process")
async def process(
    request: Request,
    settings: SettingsDep,
    ops: Annotated[str, Query(description="Pipeline, e.g. rotate:degrees=30|grayscale")] = "",
    fmt: Annotated[OutputFormat | None, Query(alias="format")] = None,
    quality: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> Response:
    """Apply a pipeline to the image in the body and return the result."""
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    data = await read_body(request, settings.max_body_bytes)
    jobs: asyncio.Semaphore = request.app.state.jobs
    state: Metrics = request.app.state.metrics
    try:
        await asyncio.wait_for(jobs.acquire(), timeout=settings.queue_timeout_s)
    except TimeoutError:
        raise Overloaded(
            f"all {settings.max_jobs} job slots stayed busy for {settings.queue_timeout_s} s"
        ) from None
    state.jobs_in_flight += 1
    started = time.perf_counter()
    try:
        output, out_fmt, width, height = await run_in_threadpool(
            _process,
            data,
            pipeline,
            fmt,
            quality or settings.default_quality,
            settings.max_pixels,
        )
    finally:
        jobs.release()
        state.jobs_in_flight -= 1
        state.observe_job(time.perf_counter() - started)
    return Response(
        content=output,
        media_type=MEDIA_TYPES[out_fmt],
        headers={
            "X-Image-Width": str(width),
            "X-Image-Height": str(height),
            "X-Image-Format": out_fmt,
            "X-Pipeline": pipeline.canonical(),
        },
    )


@router.post("/v1/info")
async def info(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Describe the image in the body from its header."""
    data = await read_body(request, settings.max_body_bytes)
    return asdict(await run_in_threadpool(probe, data))
