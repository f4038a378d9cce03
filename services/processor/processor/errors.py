"""Domain errors of the processor and the handlers that turn every failure into JSON.

DarkroomError                 base: an HTTP status, a snake_case code, a message, Retry-After
├── InvalidPipeline     400   malformed pipeline text
├── MissingKey          401   no bearer key (or signed URL) where one is needed; WWW-Authenticate
├── WrongKey            403   the bearer key is not one of ``api_keys``
├── WrongSignature      403   a signed URL that does not match its render, body or lifetime
├── ExpiredSignature    403   a signed URL past its ``expires``
├── UnknownOperation    404   a pipeline names an operation the registry lacks
├── RouteNotFound       404   no route has that path
├── MethodNotAllowed    405   the path exists, the method does not
├── BodyTooLarge        413   request body over ``max_body_bytes``
├── ImageTooLarge       413   pixel count over ``max_pixels``
├── UnreadableImage     415   empty, truncated, or not an image in a supported format
├── InvalidParameter    422   a parameter is out of range, unknown or malformed
├── Overloaded          429   no job slot freed up in time (with Retry-After)
└── InternalError       500   anything unexpected; the details stay in the server's log

Every error leaves the service as ``{"error": {"code": ..., "message": ...}}``.
"""

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

# FastAPI prefixes error locations with where the value came from; the field name is what helps.
_LOCATIONS = frozenset({"query", "path", "body", "header", "cookie"})


class DarkroomError(Exception):
    """Base of every domain error: an HTTP status, a snake_case code and a message."""

    status: int = 500
    code: str = "internal_error"
    retry_after: int | None = None

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Return the response headers this error carries (``Retry-After``, when set)."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class InvalidPipeline(DarkroomError):
    """The pipeline text is malformed."""

    status = 400
    code = "invalid_pipeline"


class MissingKey(DarkroomError):
    """The request carries no bearer key (nor a signed URL, where one would do)."""

    status = 401
    code = "missing_key"

    def headers(self) -> dict[str, str]:
        """Return ``WWW-Authenticate: Bearer``, the scheme the processor takes."""
        return {**super().headers(), "WWW-Authenticate": "Bearer"}


class WrongKey(DarkroomError):
    """The bearer key is not one of the processor's keys."""

    status = 403
    code = "wrong_key"


class WrongSignature(DarkroomError):
    """A signed URL's signature does not match its render or body, or it lives too long."""

    status = 403
    code = "wrong_signature"


class ExpiredSignature(DarkroomError):
    """A signed URL whose ``expires`` has passed."""

    status = 403
    code = "expired_signature"


class UnknownOperation(DarkroomError):
    """The pipeline names an operation that is not registered."""

    status = 404
    code = "unknown_operation"


class RouteNotFound(DarkroomError):
    """No route has the requested path."""

    status = 404
    code = "not_found"


class MethodNotAllowed(DarkroomError):
    """The path exists but does not take the request's method."""

    status = 405
    code = "method_not_allowed"


class BodyTooLarge(DarkroomError):
    """The request body exceeds the configured byte limit."""

    status = 413
    code = "body_too_large"


class ImageTooLarge(DarkroomError):
    """The image has more pixels than the configured limit."""

    status = 413
    code = "image_too_large"


class UnreadableImage(DarkroomError):
    """The bytes are empty, truncated, or not an image in a supported format."""

    status = 415
    code = "unreadable_image"


class InvalidParameter(DarkroomError):
    """A parameter is out of range, unknown or malformed."""

    status = 422
    code = "invalid_parameter"


class Overloaded(DarkroomError):
    """Every job slot stayed busy for longer than the queue timeout."""

    status = 429
    code = "overloaded"
    retry_after = 1


class InternalError(DarkroomError):
    """Anything unexpected: the client learns only that it was not its fault."""

    status = 500
    code = "internal_error"


def describe_validation_errors(errors: Sequence[Any], *, prefix: str = "") -> str:
    """Summarise pydantic/FastAPI validation errors as ``field: problem; ...``."""
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in _LOCATIONS)
        name = f"{prefix}.{field}" if prefix and field else prefix or field
        problem = str(error.get("msg", "invalid value"))
        parts.append(f"{name}: {problem}" if name else problem)
    return "; ".join(parts) or "invalid request"


def routing_error(exc: HTTPException, path: str) -> DarkroomError:
    """Name a routing failure (unknown path, wrong method) as a domain error."""
    if exc.status_code == 404:
        return RouteNotFound(f"no route {path!r}")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error: DarkroomError = MethodNotAllowed(f"{path!r} does not take this method")
        if allowed:
            error.message += f"; it takes {allowed}"
        return error
    error = DarkroomError(str(exc.detail))
    error.status = exc.status_code
    error.code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return error


def install_error_handlers(app: FastAPI) -> None:
    """Answer domain, validation, routing and unexpected errors in the one JSON shape."""

    def respond(error: DarkroomError, extra: Mapping[str, str] | None = None) -> JSONResponse:
        body = {"error": {"code": error.code, "message": error.message}}
        headers = {**(extra or {}), **error.headers()}
        return JSONResponse(body, status_code=error.status, headers=headers)

    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DarkroomError)
        return respond(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(InvalidParameter(describe_validation_errors(exc.errors())))

    async def on_routing_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return respond(routing_error(exc, request.url.path), exc.headers)

    async def on_unexpected_error(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette re-raises the exception after this response, so the server logs it once.
        return respond(InternalError("internal error; the processor logged the details"))

    app.add_exception_handler(DarkroomError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_routing_error)
    app.add_exception_handler(Exception, on_unexpected_error)
