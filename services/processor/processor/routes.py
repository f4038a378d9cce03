"""HTTP routes of the processor: operations, process, info, health and metrics."""

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from processor.codec import MEDIA_TYPES, probe
from processor.config import Settings
from processor.errors import BodyTooLarge
from processor.jobs import JobSlots
from processor.metrics import Metrics
from processor.operations import all_operations
from processor.pipeline import parse_pipeline


def get_app_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_jobs(request: Request) -> JobSlots:
    """The job slots created at start-up."""
    jobs: JobSlots = request.app.state.jobs
    return jobs


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
JobsDep = Annotated[JobSlots, Depends(get_jobs)]
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
    jobs: JobsDep,
    ops: Annotated[str, Query(description="Pipeline, e.g. rotate:degrees=30|grayscale")] = "",
    fmt: Annotated[OutputFormat | None, Query(alias="format")] = None,
    quality: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> Response:
    """Apply a pipeline to the image in the body and return the result."""
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    data = await read_body(request, settings.max_body_bytes)
    result = await jobs.run(
        data,
        pipeline,
        fmt=fmt,
        quality=quality or settings.default_quality,
        max_pixels=settings.max_pixels,
    )
    return Response(
        content=result.content,
        media_type=MEDIA_TYPES[result.format],
        headers={
            "X-Image-Width": str(result.width),
            "X-Image-Height": str(result.height),
            "X-Image-Format": result.format,
            "X-Pipeline": pipeline.canonical(),
        },
    )


@router.get("/v1/pipeline")
async def describe_pipeline(
    settings: SettingsDep,
    ops: Annotated[str, Query(description="Pipeline, e.g. rotate|grayscale")] = "",
) -> dict[str, str]:
    """Validate a pipeline and return its canonical text (equal pipelines, equal text)."""
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    return {"pipeline": pipeline.canonical(), "output": pipeline.output}


@router.post("/v1/info")
async def info(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Describe the image in the body from its header."""
    data = await read_body(request, settings.max_body_bytes)
    return asdict(await run_in_threadpool(probe, data))
