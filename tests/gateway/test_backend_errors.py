"""A backend's 4xx is the visitor's error, passed on as the backend said it; a 5xx is a 503.

The backends here are ``httpx.MockTransport`` functions answering as the catalog and the
processor do, except for the last tests, which put the real catalog behind the gateway.
"""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.clients import ServiceClient
from gateway.config import Settings
from gateway.errors import BackendRejected
from tests.gateway.conftest import gateway_client

IMAGE = "0123456789abcdef0123"
RECORD = {
    "id": IMAGE, "name": "rocket.jpg", "sha256": IMAGE + "0" * 44, "format": "jpeg",
    "mode": "RGB", "width": 640, "height": 427, "pixels": 273280, "aspect": 1.4988,
    "orientation": "landscape", "bytes": 4, "exif_orientation": 1,
    "created": "2024-01-01T00:00:00Z",
}  # fmt: skip
CURSOR_MESSAGE = "cursor: not a valid cursor"


def error_response(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """A backend's error, in the one shape the catalog and the processor answer."""
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


def catalog_refusing_queries(refusal: httpx.Response) -> httpx.MockTransport:
    """A catalog that answers every image query with ``refusal`` and serves one image."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/images":
            return refusal
        if request.url.path == f"/v1/images/{IMAGE}":
            return httpx.Response(200, json=RECORD)
        if request.url.path == f"/v1/images/{IMAGE}/content":
            return httpx.Response(200, content=b"jpeg", headers={"Content-Type": "image/jpeg"})
        return error_response(404, "not_found", f"no route {request.url.path!r}")

    return httpx.MockTransport(handle)


def processor_refusing_jobs(refusal: httpx.Response) -> httpx.MockTransport:
    """A processor that knows every pipeline and answers every job with ``refusal``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/pipeline":
            return httpx.Response(200, json={"pipeline": request.url.params["ops"]})
        if request.url.path == "/v1/process":
            return refusal
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok", "service": "processor"})
        return error_response(404, "not_found", f"no route {request.url.path!r}")

    return httpx.MockTransport(handle)


def gallery(settings: Settings, refusal: httpx.Response, **params: str) -> Any:
    with gateway_client(settings, catalog_refusing_queries(refusal)) as client:
        return client.get("/", params=params)


def render(settings: Settings, refusal: httpx.Response) -> Any:
    with gateway_client(
        settings, catalog_refusing_queries(refusal), processor_refusing_jobs(refusal)
    ) as client:
        return client.get(f"/images/{IMAGE}/render", params={"ops": "grayscale"})


def test_catalog_422_for_a_bad_cursor_is_the_gallery_with_its_message(settings: Settings) -> None:
    refusal = error_response(422, "invalid_parameter", CURSOR_MESSAGE)
    response = gallery(settings, refusal, cursor="tampered")
    assert response.status_code == 422
    assert response.template.name == "gallery.html"
    error = response.context["error"]
    assert (error.code, error.message) == ("invalid_parameter", CURSOR_MESSAGE)
    assert "retry-after" not in response.headers
    assert f">{CURSOR_MESSAGE}</p>" in response.text
    assert "catalog:" not in response.text


REFUSALS = {
    "400": (400, "malformed_upload", "a multipart body that cannot be parsed"),
    "404": (404, "not_found", "no route '/v1/somewhere'"),
    "413": (413, "image_too_large", "image is 9000x9000 = 81000000 pixels; the limit is 5e7"),
    "415": (415, "unreadable_image", "not an image"),
    "422": (422, "invalid_parameter", "min_width must not exceed max_width"),
}


@pytest.mark.parametrize(("status", "code", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_catalog_4xx_passes_on_to_the_gallery(
    settings: Settings, status: int, code: str, message: str
) -> None:
    response = gallery(settings, error_response(status, code, message))
    assert response.status_code == status
    assert response.template.name == "gallery.html"
    error = response.context["error"]
    assert (error.status, error.code, error.message) == (status, code, message)
    assert "retry-after" not in response.headers


@pytest.mark.parametrize(("status", "code", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_processor_4xx_passes_on_to_the_error_page(
    settings: Settings, status: int, code: str, message: str
) -> None:
    response = render(settings, error_response(status, code, message))
    assert response.status_code == status
    assert response.template.name == "error.html"
    error = response.context["error"]
    assert (error.status, error.code, error.message) == (status, code, message)
    assert "retry-after" not in response.headers
    assert "processor:" not in response.text


def test_processor_429_passes_on_with_its_retry_after(settings: Settings) -> None:
    busy = error_response(429, "busy", "every job slot is taken", **{"Retry-After": "30"})
    response = render(settings, busy)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.template.name == "error.html"
    error = response.context["error"]
    assert (error.code, error.message, error.retry_after) == (
        "busy", "every job slot is taken", 30,
    )  # fmt: skip


def test_catalog_429_reaches_the_gallery_with_its_retry_after(settings: Settings) -> None:
    busy = error_response(429, "too_many_requests", "slow down", **{"Retry-After": "12"})
    response = gallery(settings, busy)
    assert response.status_code == 429
    error = response.context["error"]
    assert (error.code, error.message, error.retry_after) == ("too_many_requests", "slow down", 12)
    assert response.headers["retry-after"] == "12"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_backend_5xx_is_a_503_with_the_gateway_retry_after(settings: Settings, status: int) -> None:
    failing = error_response(status, "internal_error", "internal error; details logged")
    for response in (gallery(settings, failing), render(settings, failing)):
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(settings.retry_after_s)
        assert response.template.name == "error.html"


def rejection(response: httpx.Response) -> BackendRejected:
    """The error a ServiceClient raises for this backend answer."""
    client = ServiceClient(httpx.AsyncClient(transport=httpx.MockTransport(lambda _: response)))

    async def call() -> None:
        async with client.http:
            await client.request("GET", "http://backend/anything")

    with pytest.raises(BackendRejected) as caught:
        asyncio.run(call())
    return caught.value


def test_retry_after_as_a_date_becomes_seconds() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = rejection(error_response(429, "busy", "later", **{"Retry-After": later})).retry_after
    assert seconds is not None
    assert 110 <= seconds <= 121


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", ""])
def test_retry_after_that_is_no_delay_or_date_is_dropped(value: str) -> None:
    refusal = error_response(429, "busy", "later", **{"Retry-After": value})
    assert rejection(refusal).retry_after is None


def test_a_body_without_the_error_shape_keeps_status_and_reason() -> None:
    error = rejection(httpx.Response(418, text="<html>teapot</html>"))
    assert (error.status, error.code, error.message) == (418, "http_418", "I'm a teapot")


def tampered(payload: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("width", tampered(["width", 10**30, IMAGE])),
        ("-width", tampered(["-width", -(2**70), IMAGE])),
        ("name", tampered(["name", "\ud800", IMAGE])),
        ("-created", tampered(["-created", 1e30, "ab"])),
    ],
    ids=["10**30", "-2**70", "lone surrogate", "float created"],
)
def test_tampered_cursor_through_the_real_catalog_is_a_422_gallery(
    client: TestClient, sort: str, cursor: str
) -> None:
    response = client.get("/", params={"sort": sort, "cursor": cursor})
    assert response.status_code == 422
    assert response.template.name == "gallery.html"
    assert response.context["error"].message == CURSOR_MESSAGE
    assert "retry-after" not in response.headers
