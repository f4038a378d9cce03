"""The processor's FastAPI application (``uvicorn processor.main:create_app --factory``)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
from fastapi import FastAPI

from processor.allocator import tune_malloc
from processor.config import get_settings
from processor.errors import install_error_handlers
from processor.metrics import Metrics, RequestMetrics
from processor.routes import router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the job slots from the (possibly overridden) settings."""
    settings = app.dependency_overrides.get(get_settings, get_settings)()
    app.state.jobs = asyncio.Semaphore(settings.max_jobs)
    # Jobs run side by side, one per core; OpenCV splitting each call over its own
    # pool as well only adds spinning workers and contention under load.
    cv2.setNumThreads(settings.opencv_threads)
    yield


def create_app() -> FastAPI:
    """Build the processor application."""
    tune_malloc()
    app = FastAPI(title="Darkroom processor", version="0.1.0", lifespan=lifespan)
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    return app
