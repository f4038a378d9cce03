"""The catalog application: uvicorn catalog.main:create_app --factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.config import get_settings
from catalog.errors import install_error_handlers
from catalog.routes import router
from catalog.store import open_store


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store for the life of the app, honouring a get_settings override."""
    settings = app.dependency_overrides.get(get_settings, get_settings)()
    store = open_store(settings.store, settings.blobs)
    app.state.store = store
    try:
        yield
    finally:
        store.close()


def create_app() -> FastAPI:
    """Build the catalog app."""
    app = FastAPI(
        title="Darkroom catalog",
        summary="Image metadata and originals, queryable by pixel dimensions.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(router)
    return app
