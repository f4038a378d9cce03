"""The gateway application: server-rendered pages over the catalog and the processor."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from gateway.allocator import release_large_buffers
from gateway.cache import OperationsCache, OriginalCache, ResultCache
from gateway.clients import CatalogClient, ProcessorClient
from gateway.config import Settings, get_settings
from gateway.errors import install_error_handlers
from gateway.observability import CacheMetrics, HttpMetrics, ObservedFastAPI, configure_logging
from gateway.rendering import CanonicalPipelines, Renderer
from gateway.replicas import Replicas, processor_urls
from gateway.routes import router, templates
from gateway.security import SecurityHeaders
from gateway.uploads import router as uploads_router


def bearer(key: str) -> dict[str, str]:
    """The Authorization header carrying ``key``; none for an empty key."""
    key = key.strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def create_app(
    *,
    settings: Settings | None = None,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    processor_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the gateway with ``settings`` (default: from the environment).

    Backend clients are opened in the lifespan. The transports default to the network;
    tests pass `httpx.ASGITransport`s that put the real catalog and processor apps behind
    the same clients.
    """
    release_large_buffers()
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    registry = CollectorRegistry()
    cache_metrics = CacheMetrics(registry)
    processors = processor_urls(settings.processor_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.metadata_timeout_s, connect=settings.connect_timeout_s)
        render_timeout = httpx.Timeout(
            settings.render_timeout_s, connect=settings.connect_timeout_s
        )
        async with (
            httpx.AsyncClient(
                base_url=settings.catalog_url,
                timeout=timeout,
                transport=catalog_transport,
                headers=bearer(settings.catalog_key),
            ) as catalog_http,
            httpx.AsyncClient(
                base_url=processors[0],
                timeout=timeout,
                transport=processor_transport or Replicas(processors, httpx.AsyncHTTPTransport()),
                headers=bearer(settings.processor_key),
            ) as processor_http,
        ):
            app.state.renderer = Renderer(
                CatalogClient(
                    catalog_http,
                    retry_after=settings.retry_after_s,
                    max_bytes=settings.max_image_bytes,
                    render_timeout=render_timeout,
                ),
                ProcessorClient(
                    processor_http,
                    retry_after=settings.retry_after_s,
                    max_bytes=settings.max_image_bytes,
                    render_timeout=render_timeout,
                ),
                results=ResultCache(
                    max_items=settings.cache_max_items, max_bytes=settings.cache_max_bytes
                ),
                originals=OriginalCache(
                    max_items=settings.originals_max_items,
                    max_bytes=settings.originals_max_bytes,
                ),
                operations=OperationsCache(ttl_s=settings.operations_ttl_s),
                pipelines=CanonicalPipelines(
                    max_items=settings.pipeline_cache_items, ttl_s=settings.operations_ttl_s
                ),
                page_size=settings.page_size,
                thumb_size=settings.thumb_size,
                max_renders=settings.max_renders,
                observe_cache=cache_metrics.observe,
            )
            yield

    app = ObservedFastAPI(title="Darkroom gateway", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics_registry = registry
    app.state.http_metrics = HttpMetrics(registry)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(router)
    app.include_router(uploads_router)
    install_error_handlers(app, templates)
    return app
