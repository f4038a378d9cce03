"""The catalog application: uvicorn catalog.main:create_app --factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.config import Settings, get_settings
from catalog.errors import install_error_handlers
from catalog.routes import router
from catalog.store import ImageStore, open_store


def create_app(*, settings: Settings | None = None, store: ImageStore | None = None) -> FastAPI:
    """Build the catalog app on the settings' store, or on the given one (the caller closes it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        opened = open_store(app.state.settings.store, app.state.settings.blobs)
        app.state.store = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="Darkroom catalog",
        summary="Image metadata and originals, queryable by pixel dimensions.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    install_error_handlers(app)
    app.include_router(router)
    return app
