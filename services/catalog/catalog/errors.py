"""Catalog errors and the handlers that turn them into JSON responses.

DarkroomError                  base: an HTTP status, a snake_case code and a message
├── ImageNotFound        404   no image has that id (or the id cannot exist)
├── UnreadableImage      415   empty, not an image, or a format the catalog does not keep
├── ImageTooLarge        413   width * height over max_pixels
├── BodyTooLarge         413   request body over max_body_bytes
├── MalformedUpload      400   a multipart body that cannot be parsed or has no file part
├── InvalidParameter     422   a query or path parameter out of range
└── StoreUnavailable     503   the metadata store cannot be reached (with Retry-After)

Starlette's routing errors (unknown path 404, wrong method 405) take the same shape.
Every error leaves the service as ``{"error": {"code": ..., "message": ...}}``.
"""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)

_LOCATIONS = frozenset({"query", "path", "body", "header", "cookie"})


class DarkroomError(Exception):
    """A failure the client can act on, with its HTTP status and code."""

    status: int = 500
    code: str = "internal_error"
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImageNotFound(DarkroomError):
    """No image has the requested id."""

    status = 404
    code = "image_not_found"


class UnreadableImage(DarkroomError):
    """The bytes are empty, not an image, or in a format the catalog does not keep."""

    status = 415
    code = "unreadable_image"


class ImageTooLarge(DarkroomError):
    """The image header declares more pixels than max_pixels."""

    status = 413
    code = "image_too_large"


class BodyTooLarge(DarkroomError):
    """The request body is longer than max_body_bytes."""

    status = 413
    code = "body_too_large"


class MalformedUpload(DarkroomError):
    """A multipart body that cannot be parsed or carries no file part."""

    status = 400
    code = "malformed_upload"


class InvalidParameter(DarkroomError):
    """A parameter is malformed or out of range."""

    status = 422
    code = "invalid_parameter"


class StoreUnavailable(DarkroomError):
    """The metadata store (e.g. a MongoDB server) cannot be reached right now."""

    status = 503
    code = "store_unavailable"
    retry_after = 5


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one JSON shape every error takes."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Join pydantic errors into "field: problem; field: problem"."""
    parts = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in _LOCATIONS)
        problem = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{field}: {problem}" if field else problem)
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and anything unexpected to JSON responses."""

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DarkroomError)
        response = error_response(exc.status, exc.code, exc.message)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = describe_validation_errors(exc.errors())
        return error_response(InvalidParameter.status, InvalidParameter.code, message)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's own 404 (no such route) and 405 (wrong method), in our shape.
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal error; the catalog logged it.")

    app.add_exception_handler(DarkroomError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)
