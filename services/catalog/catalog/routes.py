"""HTTP routes of the catalog: upload, query, count, fetch, delete, stats, health, metrics.

The routes sit on three routers, each with its guard declared once: ``health`` is always
open, ``writes`` take a write key and ``reads`` a read key when keys are configured
(``access.py``). ``router`` holds all three.
"""

import asyncio
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from catalog.access import read_access, write_access
from catalog.config import Settings
from catalog.errors import DarkroomError, ImageNotFound, StoreUnavailable, UnreadableImage
from catalog.ingest import ingest
from catalog.models import (
    MAX_CAMERAS,
    CameraList,
    CatalogStats,
    CountQuery,
    DuplicatePage,
    DuplicateQuery,
    ImageCount,
    ImagePage,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    SimilarPage,
    SimilarQuery,
    is_image_id,
)
from catalog.store import ImageStore
from catalog.uploads import read_upload

health = APIRouter()
writes = APIRouter(dependencies=[Depends(write_access)])
reads = APIRouter(dependencies=[Depends(read_access)])

CONTENT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# How long readiness waits for the store: a probe must answer well within its own timeout.
READY_TIMEOUT_S = 2.0


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_store(request: Request) -> ImageStore:
    """The store opened at start-up."""
    return cast(ImageStore, request.app.state.store)


StoreDep = Annotated[ImageStore, Depends(get_store)]


def valid_image_id(image_id: str) -> str:
    """The path's image id; anything not shaped like an id cannot exist, so it is a 404."""
    if not is_image_id(image_id):
        raise ImageNotFound(image_id)
    return image_id


ImageIdDep = Annotated[str, Depends(valid_image_id)]


@health.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok", "service": "catalog"}


# Probes for orchestrators and scrapers, not part of the documented API.
@health.get("/readyz")
async def readyz(store: StoreDep) -> dict[str, str]:
    """Readiness: the store answers a one-record count within ``READY_TIMEOUT_S``."""
    probe = run_in_threadpool(store.count, CountQuery(limit=1))
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except TimeoutError:
        raise StoreUnavailable(
            f"the metadata store did not answer within {READY_TIMEOUT_S:g} s"
        ) from None
    except DarkroomError as exc:
        raise StoreUnavailable(f"the metadata store did not answer: {exc.message}") from exc
    # Whatever a backend raises, readiness reports it rather than failing as a 500.
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise StoreUnavailable(f"the metadata store did not answer: {detail}") from exc
    return {"status": "ready"}


@health.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route, their latency, and store call timings."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@writes.post(
    "/v1/images",
    status_code=201,
    response_model=ImagePublic,
    responses={200: {"description": "The same bytes were already stored."}},
)
async def upload_image(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    name: Annotated[
        str | None, Query(max_length=4096, description="File name; overrides a multipart one.")
    ] = None,
) -> ImageRecord:
    """Store an image sent as the raw body or as a multipart `file` part: 201 new, 200 known."""
    upload = await read_upload(request, settings.max_body_bytes)
    if not upload.data:
        raise UnreadableImage("empty body: send the image bytes as the request body")
    # Hashing, the pixel check and the blob write are CPU and disk work: off the event loop.
    record, created = await run_in_threadpool(
        ingest, store, settings, upload.data, name if name is not None else upload.filename
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/images/{record.id}"
    return record


@reads.get("/v1/images", response_model=ImagePage)
def list_images(query: Annotated[ImageQuery, Query()], store: StoreDep) -> ImagePage:
    """One page of images matching the filters; follow next_cursor for the next."""
    return store.query(query)


# Declared before /v1/images/{image_id}, which would otherwise take "count" for an id.
@reads.get("/v1/images/count", response_model=ImageCount)
def count_images(query: Annotated[CountQuery, Query()], store: StoreDep) -> ImageCount:
    """How many images match the filters: exact up to limit, else limit with exact false."""
    return store.count(query)


@reads.get("/v1/cameras", response_model=CameraList)
def cameras(store: StoreDep) -> CameraList:
    """The cameras of the catalog with their image counts, most used first (at most 200)."""
    return CameraList(items=store.cameras(MAX_CAMERAS))


@reads.get("/v1/images/{image_id}", response_model=ImagePublic)
def get_image(image_id: ImageIdDep, store: StoreDep) -> ImageRecord:
    """One image's metadata."""
    return store.get(image_id)


@reads.get(
    "/v1/images/{image_id}/content",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 304: {"description": "Not modified."}},
)
def get_content(
    image_id: ImageIdDep,
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The original bytes, cacheable forever since the id names the content."""
    record = store.get(image_id)
    etag = f'"{record.sha256}"'
    headers = {"ETag": etag, "Cache-Control": CONTENT_CACHE_CONTROL}
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(store.content(image_id), media_type=f"image/{record.format}", headers=headers)


def _etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, as RFC 9110 asks)."""
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in candidates or etag in candidates


@writes.delete("/v1/images/{image_id}", status_code=204, response_class=Response)
def delete_image(image_id: ImageIdDep, store: StoreDep) -> Response:
    """Remove an image and its original."""
    store.delete(image_id)
    return Response(status_code=204)


@reads.get("/v1/stats", response_model=CatalogStats)
def stats(store: StoreDep) -> CatalogStats:
    """Counts by format and orientation, and the width and height ranges."""
    return store.stats()


@reads.get("/v1/images/{image_id}/similar", response_model=SimilarPage)
def similar_images(
    image_id: ImageIdDep, query: Annotated[SimilarQuery, Query()], store: StoreDep
) -> SimilarPage:
    """Images whose perceptual hash is within max_distance bits of this one's, nearest first."""
    return store.similar(image_id, query.max_distance, query.limit)


@reads.get("/v1/duplicates", response_model=DuplicatePage)
def duplicates(query: Annotated[DuplicateQuery, Query()], store: StoreDep) -> DuplicatePage:
    """Groups of near-duplicate images, each largest first; follow next_cursor for the next."""
    return store.duplicate_groups(query.limit, query.cursor)


router = APIRouter()
router.include_router(health)
router.include_router(writes)
router.include_router(reads)
