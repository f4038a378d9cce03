"""Domain errors of the processor and the one handler that turns them into JSON.

DarkroomError                 base: carries ``status``, ``code`` and a message
├── InvalidPipeline           400 malformed pipeline text
├── UnknownOperation          404 a pipeline names an operation the registry lacks
├── BodyTooLarge              413 request body over ``max_body_bytes``
├── ImageTooLarge             413 pixel count over ``max_pixels``
├── UnreadableImage           415 empty, truncated, or not an image in a supported format
├── InvalidParameter          422 a parameter is out of range, unknown or malformed
└── Overloaded                429 no job slot freed up in time (sends ``Retry-After``)
"""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)


class DarkroomError(Exception):
    """Base of every domain error: an HTTP status, a snake_case code and a message."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Return extra response headers for this error."""
        return {}


class InvalidPipeline(DarkroomError):
    """The pipeline text is malformed."""

    status = 400
    code = "invalid_pipeline"


class UnknownOperation(DarkroomError):
    """The pipeline names an operation that is not registered."""

    status = 404
    code = "unknown_operation"


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

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Return the ``Retry-After`` header."""
        return {"Retry-After": str(self.retry_after)}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """Return the JSON error shape shared by every Darkroom service."""
    return {"error": {"code": code, "message": message}}


def describe_validation_errors(errors: Sequence[Any], *, prefix: str = "") -> str:
    """Summarise pydantic/FastAPI validation errors as ``field: problem; ...``."""
    parts = []
    for error in errors:
        # FastAPI prefixes locations with "query"/"body"; the field name is what helps a caller.
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path")]
        field = ".".join(loc)
        name = f"{prefix}.{field}" if prefix and field else prefix or field
        parts.append(f"{name}: {error.get('msg', 'invalid value')}" if name else error["msg"])
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors and request validation errors to the JSON error shape."""

    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DarkroomError)
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers()
        )

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = describe_validation_errors(exc.errors())
        return JSONResponse(error_body(InvalidParameter.code, message), status_code=422)

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)

    app.add_exception_handler(DarkroomError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
