"""Everything a page needs from the backends: records, originals and processed images.

``Renderer`` owns the catalog and processor clients, the processor's operation list,
the result cache and the ETags of processed images. A result is keyed by (image
sha256, canonical pipeline, format): the processor names the canonical form
(``GET /v1/pipeline``), so ``rotate`` and ``rotate:degrees=90`` share one entry and one
ETag. Concurrent requests for the same missing result share one computation. Originals
are kept too, by sha256: a person trying parameter after parameter on one photo costs
the catalog one download, not one per try.
"""

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import TypeVar
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from gateway.cache import CacheKey, CamerasCache, OperationsCache, OriginalCache, ResultCache
from gateway.clients import (
    CameraCount,
    CatalogClient,
    DuplicatePage,
    ImagePage,
    ImageRecord,
    OperationInfo,
    Original,
    ProcessorClient,
    Rendered,
    SimilarImage,
)
from gateway.errors import BackendUnavailable, ProcessingUnavailable
from gateway.histogram import histogram_svg

T = TypeVar("T")
# Told of each cache lookup: the cache ("result" or "original") and whether it hit.
CacheObserver = Callable[[str, bool], None]

ORIGINAL_CACHE = "public, max-age=31536000, immutable"
# Results depend on the processor's version as well as on the image, so they are revalidated.
RESULT_CACHE = "public, max-age=3600"
# Shown in place of a thumbnail or result while the processor cannot be reached.
PLACEHOLDER = (Path(__file__).parent / "static" / "unavailable.svg").read_bytes()
# The cache and ETag "format" of a histogram drawing, beside the image formats.
HISTOGRAM = "histogram.svg"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif"}


def download_name(record: ImageRecord, pipeline: str, media_type: str) -> str:
    """The photo's own name, then the pipeline, then the format's extension."""
    stem = PurePath(record.name).stem or record.id[:12]
    steps = _UNSAFE.sub("-", pipeline.replace("|", "_").replace(":", "-")).strip("-._")
    extension = _EXTENSIONS.get(media_type, media_type.rpartition("/")[2] or "bin")
    return f"{stem}-{steps[:100] or 'original'}.{extension}"


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = _UNSAFE.sub("_", filename).strip("_") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def thumb_pipeline(size: int) -> str:
    """The pipeline of a thumbnail that fits a ``size`` px square."""
    return f"resize:width={size},height={size},fit=contain"


class ImageCount(BaseModel):
    """How many images match a query: ``count`` exactly, or more than ``count`` when not exact."""

    count: int
    exact: bool


def placeholder(error: ProcessingUnavailable) -> Response:
    """The "processing unavailable" picture, with the 503 and Retry-After of the outage."""
    headers = {"Cache-Control": "no-store", **error.headers()}
    return Response(PLACEHOLDER, status_code=503, media_type="image/svg+xml", headers=headers)


def result_etag(record: ImageRecord, pipeline: str, fmt: str) -> str:
    """A strong ETag for the result of a canonical pipeline on an image."""
    digest = hashlib.blake2b(f"{pipeline}\n{fmt}".encode(), digest_size=8).hexdigest()
    return f'"{record.sha256[:16]}-{digest}"'


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """Whether an If-None-Match header names this ETag."""
    return bool(if_none_match) and etag in {tag.strip() for tag in (if_none_match or "").split(",")}


def not_modified(etag: str, cache_control: str) -> Response:
    """A 304 that repeats the validators."""
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})


def image_response(content: bytes, media_type: str, etag: str, cache_control: str) -> Response:
    """An image response with its validators."""
    headers = {"ETag": etag, "Cache-Control": cache_control}
    return Response(content, media_type=media_type, headers=headers)


class CanonicalPipelines:
    """Pipeline text to the processor's canonical form, remembered for a while.

    The form changes only when the processor is redeployed, so each distinct text costs
    one round trip per ``ttl_s`` at most; ``max_items`` bounds the memory.
    """

    def __init__(self, *, max_items: int, ttl_s: float) -> None:
        self.max_items = max_items
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def get(self, processor: ProcessorClient, ops: str) -> str:
        """Return the canonical form of ``ops``; the processor's 4xx when it is invalid."""
        if not ops:
            return ""
        now = time.monotonic()
        entry = self._entries.get(ops)
        if entry is not None and now - entry[1] <= self.ttl_s:
            self._entries.move_to_end(ops)
            return entry[0]
        canonical = await processor.canonical(ops)
        self._entries[ops] = (canonical, now)
        self._entries.move_to_end(ops)
        while len(self._entries) > self.max_items:
            self._entries.popitem(last=False)
        return canonical


def _unobserved(_cache: str, _hit: bool) -> None:
    """The default cache observer: counts nothing."""


class Renderer:
    """The gateway's one way to the backends: records, originals, results, ETags."""

    def __init__(
        self,
        catalog: CatalogClient,
        processor: ProcessorClient,
        *,
        results: ResultCache,
        originals: OriginalCache,
        operations: OperationsCache,
        pipelines: CanonicalPipelines,
        page_size: int,
        thumb_size: int,
        max_renders: int = 8,
        health_ttl_s: float = 2.0,
        observe_cache: CacheObserver = _unobserved,
        cameras_ttl_s: float = 30.0,
    ) -> None:
        self.catalog = catalog
        self.processor = processor
        self.results = results
        self.originals = originals
        self._operations = operations
        self._pipelines = pipelines
        self.page_size = page_size
        self.thumb_ops = thumb_pipeline(thumb_size)
        self._in_flight: dict[CacheKey, asyncio.Task[Rendered]] = {}
        # Each render holds an original and a result in memory: a bound on how many run
        # at once is a bound on what they hold (the processor's own slots queue the rest).
        # Thumbnails have bounds of their own, so they never wait behind full renders.
        self._renders = asyncio.Semaphore(max_renders)
        self._thumbnails = asyncio.Semaphore(max_renders)
        self._health_ttl_s = health_ttl_s
        self._health: tuple[float, ProcessingUnavailable | None] = (float("-inf"), None)
        self._observe_cache = observe_cache
        self._cameras = CamerasCache(ttl_s=cameras_ttl_s)

    async def page(self, filters: list[tuple[str, str]], cursor: str | None) -> ImagePage:
        """One page of the catalog's images for these filters and sort, from ``cursor``."""
        params = [*filters, ("limit", str(self.page_size))]
        if cursor:
            params.append(("cursor", cursor))
        return await self.catalog.list_images(params)

    async def count(self, filters: list[tuple[str, str]]) -> ImageCount:
        """How many of the catalog's images match these filters (no sort), up to its cap."""
        response = await self.catalog.request("GET", "/v1/images/count", params=filters)
        return ImageCount.model_validate(response.json())

    async def image(self, image_id: str) -> ImageRecord:
        """One image's metadata."""
        return await self.catalog.get_image(image_id)

    async def cameras(self) -> list[CameraCount]:
        """The catalog's cameras, the most used first (cached for a short while)."""
        return await self._cameras.get(self.catalog.cameras)

    async def similar(self, image_id: str, *, limit: int) -> list[SimilarImage]:
        """The images that look like this one, nearest first."""
        return await self.catalog.similar(image_id, limit=limit)

    async def duplicates(self, cursor: str | None, *, limit: int) -> DuplicatePage:
        """One page of groups of near-duplicate images, from ``cursor``."""
        params = [("limit", str(limit)), *([("cursor", cursor)] if cursor else [])]
        return await self.catalog.duplicates(params)

    async def operations(self) -> list[OperationInfo]:
        """The processor's operations (cached for a short while)."""
        return await self._processing(self._operations.get(self.processor.operations))

    async def _processing(self, call: Awaitable[T]) -> T:
        """Await a processor call; an outage is remembered and raised as ProcessingUnavailable."""
        try:
            return await call
        except BackendUnavailable as exc:
            outage = ProcessingUnavailable(exc.message, retry_after=exc.retry_after)
            outage.status = exc.status
            self._health = (time.monotonic(), outage)
            raise outage from exc

    async def processing_outage(self) -> ProcessingUnavailable | None:
        """Why the processor cannot be reached now, or None when it answers (checked briefly)."""
        checked_at, outage = self._health
        if time.monotonic() - checked_at <= self._health_ttl_s:
            return outage
        try:
            health = self.processor.request("GET", "/healthz", timeout=self._health_ttl_s)
            await self._processing(health)
        except ProcessingUnavailable as exc:
            return exc
        self._health = (time.monotonic(), None)
        return None

    async def canonical(self, ops: str) -> str:
        """The processor's canonical form of a pipeline text."""
        return await self._processing(self._pipelines.get(self.processor, ops.strip()))

    async def render(
        self, record: ImageRecord, ops: str, fmt: str, *, thumbnail: bool = False
    ) -> Rendered:
        """Process an image through the cache; one computation serves concurrent misses."""
        pipeline = await self.canonical(ops)
        key = (record.sha256, pipeline, fmt)
        cached = self.results.get(key)
        self._observe_cache("result", cached is not None)
        if cached is not None:
            return cached
        task = self._in_flight.get(key)
        if task is None:
            # A task of its own, so a visitor who leaves does not cancel it for the others.
            task = asyncio.ensure_future(self._compute(key, record, pipeline, fmt, thumbnail))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    async def _compute(
        self, key: CacheKey, record: ImageRecord, pipeline: str, fmt: str, thumbnail: bool
    ) -> Rendered:
        async with self._thumbnails if thumbnail else self._renders:
            original = await self._original(record)
            rendered = await self._processing(
                self.processor.process(original, pipeline, fmt or None)
            )
        self.results.put(key, rendered)
        return rendered

    async def _original(self, record: ImageRecord) -> Original:
        """An image's original bytes, from the cache when a render of it fetched them lately."""
        original = self.originals.get(record.sha256)
        self._observe_cache("original", original is not None)
        if original is None:
            original = await self.catalog.content(record.id)
            self.originals.put(record.sha256, original)
        return original

    def _finished(self, key: CacheKey, task: asyncio.Task[Rendered]) -> None:
        self._in_flight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited is not reported

    async def original(self, image_id: str, if_none_match: str | None) -> Response:
        """The original bytes, immutable under their content hash."""
        record = await self.image(image_id)
        etag = f'"{record.sha256}"'
        if etag_matches(etag, if_none_match):
            return not_modified(etag, ORIGINAL_CACHE)
        # Streamed through: the gateway never holds a whole original for this route.
        upstream = await self.catalog.open_content(record.id)
        media_type = upstream.headers.get("content-type", "application/octet-stream")
        headers = {"ETag": etag, "Cache-Control": ORIGINAL_CACHE}
        if "content-length" in upstream.headers:
            headers["Content-Length"] = upstream.headers["content-length"]
        return StreamingResponse(
            upstream.aiter_raw(),
            media_type=media_type,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    async def thumbnail(
        self, image_id: str, if_none_match: str | None, size: int | None = None
    ) -> Response:
        """A JPEG that fits the gallery's square cells (``size`` px, default the configured size).

        A placeholder while processing is down.
        """
        ops = self.thumb_ops if size is None else thumb_pipeline(size)
        try:
            return await self.processed(image_id, ops, "jpeg", if_none_match, thumbnail=True)
        except ProcessingUnavailable as exc:
            return placeholder(exc)

    async def processed(
        self,
        image_id: str,
        ops: str,
        fmt: str,
        if_none_match: str | None,
        *,
        download: bool = False,
        thumbnail: bool = False,
    ) -> Response:
        """An image processed by a pipeline, with an ETag of its canonical form."""
        # Neither answer depends on the other, and each is a round trip to another process.
        record, pipeline = await asyncio.gather(self.image(image_id), self.canonical(ops))
        etag = result_etag(record, pipeline, fmt)
        if etag_matches(etag, if_none_match):
            return not_modified(etag, RESULT_CACHE)
        rendered = await self.render(record, ops, fmt, thumbnail=thumbnail)
        response = image_response(rendered.content, rendered.media_type, etag, RESULT_CACHE)
        if download:
            name = download_name(record, pipeline, rendered.media_type)
            response.headers["Content-Disposition"] = content_disposition(name)
        return response

    async def histogram(self, image_id: str, ops: str, if_none_match: str | None) -> Response:
        """An SVG of the levels of a pipeline's result (the original's without one), cached."""
        record = await self.image(image_id)
        pipeline = await self.canonical(ops)
        etag = result_etag(record, pipeline, HISTOGRAM)
        if etag_matches(etag, if_none_match):
            return not_modified(etag, RESULT_CACHE)
        key = (record.sha256, pipeline, HISTOGRAM)
        drawn = self.results.get(key)
        self._observe_cache("result", drawn is not None)
        if drawn is None:
            async with self._renders:
                original = await self._original(record)
                counts = await self._processing(self.processor.histogram(original, pipeline))
            title = f"Histogram of {'the result of ' + pipeline if pipeline else 'the original'}"
            svg = histogram_svg(counts, title).encode()
            drawn = Rendered(svg, "image/svg+xml", counts.width, counts.height, pipeline)
            self.results.put(key, drawn)
        return image_response(drawn.content, drawn.media_type, etag, RESULT_CACHE)
