"""The catalog application: uvicorn catalog.main:create_app --factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from catalog.access import Access
from catalog.config import Settings, get_settings
from catalog.errors import install_error_handlers
from catalog.routes import router
from catalog.store import ImageStore, open_store
from catalog.sweeper import OrphanSweeper

logger = logging.getLogger(__name__)


def log_to_stderr() -> None:
    """Send the catalog's log lines (sweep counts among them) to stderr, unless logging is set up.

    uvicorn configures only its own loggers; without a handler, Python drops lines below
    WARNING.
    """
    catalog = logging.getLogger("catalog")
    if catalog.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-8s %(name)s: %(message)s"))
    catalog.addHandler(handler)
    catalog.setLevel(logging.INFO)


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
            app.state.store = store
            yield
            return
        opened = open_store(current.store, current.blobs)
        app.state.store = opened
        sweeper = None
        if current.sweep_interval_s > 0:
            sweeper = OrphanSweeper(
                opened, grace_s=current.orphan_grace_s, interval_s=current.sweep_interval_s
            )
            sweeper.start()
        try:
            yield
        finally:
            if sweeper is not None:
                # Joining the thread blocks: off the event loop.
                await run_in_threadpool(sweeper.stop)
            opened.close()

    log_to_stderr()
    app = FastAPI(
        title="Darkroom catalog",
        summary="Image metadata and originals, queryable by pixel dimensions.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.state.access = Access.from_settings(app.state.settings)
    install_error_handlers(app)
    app.include_router(router)
    return app
