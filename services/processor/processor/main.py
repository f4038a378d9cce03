"""The processor's FastAPI application (``uvicorn processor.main:create_app --factory``)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from processor.allocator import tune_malloc
from processor.config import Settings, get_settings
from processor.errors import install_error_handlers
from processor.jobs import JobSlots
from processor.metrics import Metrics
from processor.observability import HttpMetrics, ObservedFastAPI, configure_logging
from processor.routes import router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the job slots from the application's settings."""
    settings: Settings = app.state.settings
    app.state.jobs = JobSlots(
        max_jobs=settings.max_jobs,
        queue_timeout_s=settings.queue_timeout_s,
        metrics=app.state.metrics,
        express_jobs=settings.express_jobs,
        express_max_cost=settings.express_max_cost,
        heavy_nice=settings.heavy_job_nice,
        memory_soft_limit=settings.memory_soft_limit_mb * 1024 * 1024,
    )
    # Jobs run side by side, one per core; OpenCV splitting each call over its own
    # pool as well only adds spinning workers and contention under load.
    cv2.setNumThreads(settings.opencv_threads)
    app.state.accepting_jobs = True
    try:
        yield
    finally:
        app.state.accepting_jobs = False
        app.state.jobs.close()


def create_app(*, settings: Settings | None = None) -> FastAPI:
    """Build the processor application with ``settings`` (default: from the environment)."""
    tune_malloc()
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    app = ObservedFastAPI(title="Darkroom processor", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.accepting_jobs = False
    registry = CollectorRegistry()
    app.state.metrics = Metrics(registry)
    app.state.http_metrics = HttpMetrics(registry)
    install_error_handlers(app)
    app.include_router(router)
    return app
