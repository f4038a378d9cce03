"""The processor's FastAPI application (``uvicorn processor.main:create_app --factory``)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from processor.config import get_settings
from processor.errors import install_error_handlers
from processor.metrics import Metrics
from processor.routes import router


def _route_template(request: Request) -> str:
    """Return the path template the request matched, so metric labels stay few."""
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the job slots from the (possibly overridden) settings."""
    settings = app.dependency_overrides.get(get_settings, get_settings)()
    app.state.jobs = asyncio.Semaphore(settings.max_jobs)
    yield


def create_app() -> FastAPI:
    """Build the processor application."""
    app = FastAPI(title="Darkroom processor", version="0.1.0", lifespan=lifespan)
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(router)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            app.state.metrics.observe_request(_route_template(request), status)

    return app
