"""Domain errors of the catalog and the handlers that turn every failure into JSON.

DarkroomError                 base: an HTTP status, a snake_case code, a message, Retry-After
├── MalformedUpload     400   a multipart body that cannot be parsed or has no file part
├── MissingKey          401   no bearer key on a route that needs one (with WWW-Authenticate)
├── WrongKey            403   a bearer key that is not one this route accepts
├── ImageNotFound       404   no image has that id (or the id cannot exist)
├── RouteNotFound       404   no route has that path
├── MethodNotAllowed    405   the path exists, the method does not
├── BodyTooLarge        413   request body over ``max_body_bytes``
├── ImageTooLarge       413   width * height over ``max_pixels``
├── UnreadableImage     415   empty, not an image, or a format the catalog does not keep
├── InvalidParameter    422   a query or path parameter is out of range or malformed
├── InternalError       500   anything unexpected; the details stay in the server's log
└── StoreUnavailable    503   the metadata store cannot be reached (with Retry-After)

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


class MalformedUpload(DarkroomError):
    """A multipart body that cannot be parsed or carries no file part."""

    status = 400
    code = "malformed_upload"


class MissingKey(DarkroomError):
    """The route needs a bearer key and the request carries none."""

    status = 401
    code = "missing_key"

    def headers(self) -> dict[str, str]:
        """Return ``WWW-Authenticate: Bearer``, the scheme the catalog takes."""
        return {**super().headers(), "WWW-Authenticate": "Bearer"}


class WrongKey(DarkroomError):
    """The bearer key is not one the route accepts."""

    status = 403
    code = "wrong_key"


class ImageNotFound(DarkroomError):
    """No image has the requested id."""

    status = 404
    code = "image_not_found"

    def __init__(self, image_id: str) -> None:
        # Capped: the id comes from the client and may be any length.
        super().__init__(f"no image has the id {image_id[:80]!r}")


class RouteNotFound(DarkroomError):
    """No route has the requested path."""

    status = 404
    code = "not_found"


class MethodNotAllowed(DarkroomError):
    """The path exists but does not take the request's method."""

    status = 405
    code = "method_not_allowed"


class BodyTooLarge(DarkroomError):
    """The request body is longer than the configured byte limit."""

    status = 413
    code = "body_too_large"


class ImageTooLarge(DarkroomError):
    """The image header declares more pixels than the configured limit."""

    status = 413
    code = "image_too_large"


class UnreadableImage(DarkroomError):
    """The bytes are empty, not an image, or in a format the catalog does not keep."""

    status = 415
    code = "unreadable_image"


class InvalidParameter(DarkroomError):
    """A parameter is out of range or malformed."""

    status = 422
    code = "invalid_parameter"


class InternalError(DarkroomError):
    """Anything unexpected: the client learns only that it was not its fault."""

    status = 500
    code = "internal_error"


class StoreUnavailable(DarkroomError):
    """The metadata store (e.g. a MongoDB server) cannot be reached right now."""

    status = 503
    code = "store_unavailable"
    retry_after = 5


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Summarise pydantic/FastAPI validation errors as ``field: problem; ...``."""
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in _LOCATIONS)
        # A model validator's ValueError reads "Value error, ..."; the rest is the message.
        problem = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{field}: {problem}" if field else problem)
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
        return respond(InternalError("internal error; the catalog logged the details"))

    app.add_exception_handler(DarkroomError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_routing_error)
    app.add_exception_handler(Exception, on_unexpected_error)
