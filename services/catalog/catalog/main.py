"""The catalog application: uvicorn catalog.main:create_app --factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.config import get_settings
from catalog.errors import install_error_handlers
from catalog.routes import router
from catalog.store import ImageStore, open_store


def create_app(*, store: ImageStore | None = None) -> FastAPI:
    """Build the catalog app on CATALOG_STORE, or on the given store (which the caller closes)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Resolved here so a get_settings override applies to the store as well.
        if store is not None:
            app.state.store = store
            yield
            return
        settings = app.dependency_overrides.get(get_settings, get_settings)()
        opened = open_store(settings.store, settings.blobs)
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
    install_error_handlers(app)
    app.include_router(router)
    return app
