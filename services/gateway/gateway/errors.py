"""Gateway errors, rendered as HTML error pages.

DarkroomError              base: an HTTP status, a snake_case code and a message
├── PageNotFound           404  no route matches the URL (and other routing errors)
├── InvalidInput           422  a query or form field the gateway cannot use
├── ImageNotFound          404  the catalog has no such image
├── BackendRejected        4xx  a backend refused the request; its status and message pass through
└── BackendUnavailable     503  a backend is down, timing out or failing (with Retry-After)
"""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException


class DarkroomError(Exception):
    """Base of every error the gateway turns into an error page."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Something went wrong"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class PageNotFound(DarkroomError):
    """No page at that URL, or a method the URL does not allow."""

    status = 404
    code = "not_found"
    title = "Page not found"

    def __init__(self, message: str, *, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


class InvalidInput(DarkroomError):
    """A query or form field the gateway cannot use."""

    status = 422
    code = "invalid_parameter"
    title = "Invalid input"


class ImageNotFound(DarkroomError):
    """The catalog has no image with that id."""

    status = 404
    code = "image_not_found"
    title = "Image not found"


class BackendRejected(DarkroomError):
    """A backend answered with a 4xx; its status, code and message are kept."""

    title = "Request rejected"

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BackendUnavailable(DarkroomError):
    """A backend is down, timing out or failing."""

    status = 503
    code = "backend_unavailable"
    title = "Service unavailable"


def validation_message(exc: RequestValidationError) -> str:
    """Summarise FastAPI validation errors as 'field: problem' lines."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{field}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Render every DarkroomError, and request validation errors, as an HTML error page."""

    def page(request: Request, error: DarkroomError) -> Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return templates.TemplateResponse(
            request,
            "error.html",
            {"error": error},
            status_code=error.status,
            headers=headers,
        )

    async def on_darkroom_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DarkroomError)
        return page(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return page(request, InvalidInput(validation_message(exc)))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return page(
            request, PageNotFound(f"{request.url.path}: {exc.detail}", status=exc.status_code)
        )

    app.add_exception_handler(DarkroomError, on_darkroom_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
