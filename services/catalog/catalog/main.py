"""The catalog application: uvicorn catalog.main:create_app --factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry

from catalog.access import Access
from catalog.config import Settings, get_settings
from catalog.errors import install_error_handlers
from catalog.observability import (
    HttpMetrics,
    ObservedFastAPI,
    configure_logging,
    store_seconds,
    timed_store,
)
from catalog.routes import router
from catalog.store import ImageStore, open_store
from catalog.sweeper import OrphanSweeper

logger = logging.getLogger(__name__)


def create_app(*, settings: Settings | None = None, store: ImageStore | None = None) -> FastAPI:
    """Build the catalog app on the settings' store, or on the given one (the caller closes it).

    The app sweeps orphaned originals only in a store it opened itself.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current: Settings = app.state.settings
        if not current.api_keys:
            logger.warning(
                "CATALOG_API_KEYS is not set: anyone who can reach the catalog can add and "
                "delete images"
            )
        if store is not None:
            app.state.store = timed_store(store, app.state.store_seconds)
            yield
            return
        opened = open_store(
            current.store, current.blobs, duplicate_distance=current.duplicate_distance
        )
        app.state.store = timed_store(opened, app.state.store_seconds)
        sweeper = None
        if current.sweep_interval_s > 0:
            sweeper = OrphanSweeper(
                app.state.store, grace_s=current.orphan_grace_s, interval_s=current.sweep_interval_s
            )
            sweeper.start()
        try:
            yield
        finally:
            if sweeper is not None:
                # Joining the thread blocks: off the event loop.
                await run_in_threadpool(sweeper.stop)
            opened.close()

    settings = settings or get_settings()
    configure_logging(settings.log_format)
    app = ObservedFastAPI(
        title="Darkroom catalog",
        summary="Image metadata and originals, queryable by pixel dimensions.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.state.http_metrics = HttpMetrics(registry)
    app.state.store_seconds = store_seconds(registry)
    app.state.access = Access.from_settings(app.state.settings)
    install_error_handlers(app)
    app.include_router(router)
    return app
