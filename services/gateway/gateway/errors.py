"""Gateway errors and the handlers that turn every failure into an HTML error page.

DarkroomError                 base: an HTTP status, a snake_case code, a message, Retry-After
├── RouteNotFound       404   no page at that URL
├── ImageNotFound       404   the catalog has no such image
├── MethodNotAllowed    405   the URL exists, the method does not
├── ImageTooLarge       413   an original or result over the gateway's ``max_image_bytes``
├── InvalidInput        422   a query or form field the gateway cannot use
├── BackendRejected     4xx   a backend refused the request; its status, code and message pass on
├── InternalError       500   anything unexpected; the details stay in the server's log
└── BackendUnavailable  503   a backend is down or failing (with Retry-After)
    ├── BackendTimeout  504   a backend did not answer within its budget (hung)
    └── ProcessingUnavailable 503/504   the processor is: pages degrade to what the catalog serves

Every error leaves the gateway as ``error.html`` with the error's status.
"""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

# FastAPI prefixes error locations with where the value came from; the field name is what helps.
_LOCATIONS = frozenset({"query", "path", "body", "header", "cookie"})


class DarkroomError(Exception):
    """Base of every error the gateway turns into an error page."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Something went wrong"
    retry_after: int | None = None

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Return the response headers this error carries (``Retry-After``, when set)."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class RouteNotFound(DarkroomError):
    """No page at that URL."""

    status = 404
    code = "not_found"
    title = "Page not found"


class ImageNotFound(DarkroomError):
    """The catalog has no image with that id."""

    status = 404
    code = "image_not_found"
    title = "Image not found"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"no image has the id {image_id[:80]!r}")


class MethodNotAllowed(DarkroomError):
    """The URL exists but does not take the request's method."""

    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class ImageTooLarge(DarkroomError):
    """An original or a result is larger than the gateway holds for one request."""

    status = 413
    code = "image_too_large"
    title = "Image too large"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The image is too large for the gateway to pass on: {detail}.")


class InvalidInput(DarkroomError):
    """A query or form field the gateway cannot use."""

    status = 422
    code = "invalid_parameter"
    title = "Invalid input"


class BackendRejected(DarkroomError):
    """A backend answered with a 4xx; its status, code and message are kept."""

    title = "Request rejected"

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InternalError(DarkroomError):
    """Anything unexpected: the visitor learns only that it was not their fault."""

    status = 500
    code = "internal_error"


class BackendUnavailable(DarkroomError):
    """A backend is down, timing out or failing."""

    status = 503
    code = "backend_unavailable"
    title = "Service unavailable"


class BackendTimeout(BackendUnavailable):
    """A backend took longer than the call's budget: hung or overwhelmed."""

    status = 504
    code = "backend_timeout"
    title = "Service did not answer"


class ProcessingUnavailable(BackendUnavailable):
    """The processor is down: pages show what the catalog can serve, with a banner."""

    title = "Processing unavailable"


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Summarise FastAPI validation errors as ``field: problem; ...``."""
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in _LOCATIONS)
        problem = str(error.get("msg", "invalid value"))
        parts.append(f"{field}: {problem}" if field else problem)
    return "; ".join(parts) or "invalid request"


def routing_error(exc: HTTPException, path: str) -> DarkroomError:
    """Name a routing failure (unknown path, wrong method) as a domain error."""
    if exc.status_code == 404:
        return RouteNotFound(f"There is no page at {path}.")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error: DarkroomError = MethodNotAllowed(f"{path} does not take this method.")
        if allowed:
            error.message += f" It takes {allowed}."
        return error
    error = DarkroomError(f"{path}: {exc.detail}")
    error.status = exc.status_code
    error.code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return error


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Render domain, validation, routing and unexpected errors as the one HTML error page."""

    def respond(
        request: Request, error: DarkroomError, extra: Mapping[str, str] | None = None
    ) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"error": error},
            status_code=error.status,
            headers={**(extra or {}), **error.headers()},
        )

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DarkroomError)
        return respond(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, InvalidInput(describe_validation_errors(exc.errors())))

    async def on_routing_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return respond(request, routing_error(exc, request.url.path), exc.headers)

    async def on_unexpected_error(request: Request, _exc: Exception) -> Response:
        # Starlette re-raises the exception after this response, so the server logs it once.
        return respond(request, InternalError("An unexpected error; the gateway logged it."))

    app.add_exception_handler(DarkroomError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_routing_error)
    app.add_exception_handler(Exception, on_unexpected_error)
