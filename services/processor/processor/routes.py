"""HTTP routes of the processor: operations, process, histogram, info, health and metrics."""

import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from processor.auth import Grant, admit
from processor.codec import MEDIA_TYPES, ColourPolicy, MetadataPolicy, probe
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
BEARER = HTTPBearer(auto_error=False, description="One of PROCESSOR_API_KEYS, when set.")
# The scope a route declares when a signed render URL may stand in for a bearer key.
SIGNED_RENDER = "signed-render"


async def authorize(
    security_scopes: SecurityScopes,
    request: Request,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Grant:
    """Let the request in by bearer key, by signed URL where the route takes one, or openly."""
    signable = SIGNED_RENDER in security_scopes.scopes
    return admit(
        settings,
        bearer=None if bearer is None else bearer.credentials,
        render_query=request.query_params if signable else None,
        now=time.time(),
    )


OutputFormat = Literal["jpeg", "png", "webp", "avif"]

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


@router.get("/readyz", responses={503: {"description": "The processor is shutting down."}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 while the processor takes jobs, with each lane's slots; 503 otherwise."""
    jobs: JobSlots | None = getattr(request.app.state, "jobs", None)
    if jobs is None or not request.app.state.accepting_jobs:
        error = {"code": "shutting_down", "message": "the processor is not taking jobs"}
        return JSONResponse({"error": error}, status_code=503, headers={"Retry-After": "1"})
    lanes = {
        name: {
            "slots": lane.stats.slots,
            "running": lane.stats.running,
            "waiting": lane.stats.waiting,
        }
        for name, lane in jobs.lanes.items()
    }
    return JSONResponse({"status": "ready", "lanes": lanes})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Expose Prometheus metrics (requests, lanes, jobs, stages and operations)."""
    state: Metrics = request.app.state.metrics
    return Response(state.render(), media_type=CONTENT_TYPE_LATEST)


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
    grant: Annotated[Grant, Security(authorize, scopes=[SIGNED_RENDER])],
    ops: Annotated[str, Query(description="Pipeline, e.g. rotate:degrees=30|grayscale")] = "",
    fmt: Annotated[OutputFormat | None, Query(alias="format")] = None,
    quality: Annotated[int | None, Query(ge=1, le=100)] = None,
    metadata: Annotated[
        MetadataPolicy,
        Query(description="strip: no EXIF in the result; keep: the input's, orientation 1"),
    ] = "strip",
    colour: Annotated[
        ColourPolicy,
        Query(
            description=(
                "srgb: convert from the embedded colour profile to sRGB; "
                "keep: keep the original colours and embed their profile in the result"
            )
        ),
    ] = "srgb",
) -> Response:
    """Apply a pipeline to the image in the body and return the result.

    The result is upright and, unless ``metadata=keep``, carries no EXIF (no GPS,
    no camera); with it, the input's EXIF with orientation 1 and no thumbnail.
    Colours are converted to sRGB from an embedded profile (untagged output), unless
    ``colour=keep`` keeps them and embeds the profile.
    ``format`` defaults to the input's, JPEG for HEIC input, PNG for graphics and
    for inputs that cannot be written (GIF, TIFF, BMP).

    With ``PROCESSOR_API_KEYS`` set it needs ``Authorization: Bearer <key>``; with
    ``PROCESSOR_SIGNING_KEYS`` set, ``image``, ``expires`` and ``signature`` may
    stand in for the key (``processor.signing``), and the body must then be that image.
    """
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    data = await read_body(request, settings.max_body_bytes)
    await grant.check_body(data)
    job = await jobs.plan(
        data,
        pipeline,
        fmt=fmt,
        quality=quality or settings.default_quality,
        max_pixels=settings.max_pixels,
        metadata=metadata,
        colour=colour,
    )
    result = await jobs.run(job)
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


@router.post("/v1/histogram", dependencies=[Security(authorize)])
async def histogram(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    ops: Annotated[str, Query(description="Pipeline, e.g. grayscale; empty: the original")] = "",
) -> dict[str, Any]:
    """Count each colour channel's 256 levels in the result of a pipeline over the body.

    ``{"channels": ["r", "g", "b"] or ["l"], "bins": 256, "counts": [[...256], ...],
    "width": ..., "height": ...}``: one list of counts per channel, each summing to
    ``width * height``, the result's size. Alpha is not counted. The result is the one
    ``/v1/process`` makes (upright, in sRGB), before any encoding; a first ``resize``
    step shrinks on load as it does there. Limits and errors are ``/v1/process``'s, and so
    is the bearer key (a signed render URL does not stand in for it here).
    """
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    data = await read_body(request, settings.max_body_bytes)
    job = await jobs.plan(
        data, pipeline, fmt=None, quality=settings.default_quality, max_pixels=settings.max_pixels
    )
    result = await jobs.histogram(job)
    return {
        "channels": list(result.channels),
        "bins": len(result.counts[0]),
        "counts": result.counts,
        "width": result.width,
        "height": result.height,
        "pipeline": pipeline.canonical(),
    }


@router.get("/v1/pipeline", dependencies=[Security(authorize)])
async def describe_pipeline(
    settings: SettingsDep,
    ops: Annotated[str, Query(description="Pipeline, e.g. rotate|grayscale")] = "",
) -> dict[str, str]:
    """Validate a pipeline and return its canonical text (equal pipelines, equal text)."""
    pipeline = parse_pipeline(ops, max_steps=settings.max_steps)
    return {"pipeline": pipeline.canonical(), "output": pipeline.output}


@router.post("/v1/info", dependencies=[Security(authorize)])
async def info(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Describe the image in the body from its header, without decoding it.

    A flat object; a field the file does not carry is null:

    - ``format``: jpeg, png, webp, gif, tiff, bmp, avif or heic;
    - ``width``, ``height``: as a person sees it, after the orientation;
    - ``mode``: Pillow's mode of the stored samples (RGB, L, I;16, CMYK, P...);
    - ``bytes``: the size of the body;
    - ``exif_orientation``: the orientation the file carries, 1-8 (1: upright as stored);
    - ``frames``: frames of an animation or pages of a TIFF or HEIF, 1 for a still
      (a phone JPEG's further MPO pictures are previews, not frames);
    - ``bit_depth``: bits per sample as stored (8, 16, 10 for some HEIC and AVIF...);
    - ``colour_space``: RGB, grey, CMYK, YCbCr, Lab... (a palette's colours are RGB);
    - ``icc_profile``: the embedded ICC profile's description;
    - ``camera_make``, ``camera_model``: EXIF Make and Model;
    - ``taken``: EXIF DateTimeOriginal as ISO 8601, with OffsetTimeOriginal when present.
    """
    data = await read_body(request, settings.max_body_bytes)
    return asdict(await run_in_threadpool(probe, data))
