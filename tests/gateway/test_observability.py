"""Request ids through the gateway to its backends, cache metrics, logs and readiness.

The backends are the real catalog and processor apps behind ``httpx.ASGITransport``;
``Recording`` notes the id each backend call carried and the id each backend echoed.
"""

import json
import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.config import Settings
from tests.gateway.conftest import Backends, gateway_client
from tests.metrics import sample

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class Recording(httpx.AsyncBaseTransport):
    """A transport that passes each request on and notes (path, id sent, id echoed)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request and record the ids on both sides."""
        response = await self.inner.handle_async_request(request)
        self.calls.append(
            (
                request.url.path,
                request.headers.get("x-request-id"),
                response.headers.get("x-request-id"),
            )
        )
        return response


def refused(request: httpx.Request) -> httpx.Response:
    """A backend nobody listens for."""
    raise httpx.ConnectError("connection refused", request=request)


def recorded_gateway(backends: Backends) -> tuple[TestClient, Recording, Recording]:
    """A gateway in front of the real backends, each behind a ``Recording``."""
    catalog = Recording(httpx.ASGITransport(app=backends.catalog))
    processor = Recording(httpx.ASGITransport(app=backends.processor))
    settings = Settings(catalog_url="http://catalog", processor_url="http://processor")
    return gateway_client(settings, catalog, processor), catalog, processor


def test_the_given_id_reaches_every_backend_and_comes_back(
    backends: Backends, ids: dict[str, str]
) -> None:
    client, catalog, processor = recorded_gateway(backends)
    with client:
        response = client.get(
            f"/images/{ids['rocket.jpg']}/render",
            params={"ops": "rotate:degrees=15"},
            headers={"X-Request-ID": "page-view-1"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "page-view-1"
    paths = {path for path, _, _ in catalog.calls + processor.calls}
    assert {"/v1/pipeline", "/v1/process", f"/v1/images/{ids['rocket.jpg']}"} <= paths
    for path, sent, echoed in catalog.calls + processor.calls:
        assert (sent, echoed) == ("page-view-1", "page-view-1"), path


def test_a_missing_or_malformed_id_is_replaced_and_passed_on(
    backends: Backends, ids: dict[str, str]
) -> None:
    client, catalog, _ = recorded_gateway(backends)
    with client:
        for given in ({}, {"X-Request-ID": "x" * 129}, {"X-Request-ID": "a b"}):
            catalog.calls.clear()
            response = client.get(f"/images/{ids['camera.png']}", headers=given)
            assert response.status_code == 200
            created = response.headers["x-request-id"]
            assert GENERATED_ID.fullmatch(created), given
            assert catalog.calls
            assert {sent for _, sent, _ in catalog.calls} == {created}


def test_one_id_in_the_json_lines_of_all_three_services(
    backends: Backends, ids: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with gateway_client(
        Settings(catalog_url="http://catalog", processor_url="http://processor", log_format="json"),
        httpx.ASGITransport(app=backends.catalog),
        httpx.ASGITransport(app=backends.processor),
    ) as client:
        capsys.readouterr()
        client.get(f"/images/{ids['chelsea.png']}/thumb", headers={"X-Request-ID": "thumb-trace"})
        err = capsys.readouterr().err
    # The backends were built as text loggers; only the gateway's lines are JSON here.
    gateway_lines: list[dict[str, Any]] = [
        json.loads(line) for line in err.splitlines() if line.startswith("{")
    ]
    (access,) = [line for line in gateway_lines if line["logger"] == "gateway.access"]
    assert access["request_id"] == "thumb-trace"
    assert access["route"] == "/images/{image_id}/thumb"
    assert access["status"] == 200
    for service in ("catalog", "processor"):
        assert re.search(rf"{service}\.access \[thumb-trace\] ", err), service


def test_cache_hits_and_misses_are_counted(backends: Backends, ids: dict[str, str]) -> None:
    client, _, _ = recorded_gateway(backends)
    image = ids["coffee.png"]
    with client:
        for ops in ("grayscale", "grayscale", "invert"):
            response = client.get(f"/images/{image}/render", params={"ops": ops})
            assert response.status_code == 200
        text = client.get("/metrics").text
    counted = "darkroom_gateway_cache_requests_total"
    assert sample(text, counted, cache="result", outcome="miss") == 2
    assert sample(text, counted, cache="result", outcome="hit") == 1
    # The second pipeline's original came from the original cache.
    assert sample(text, counted, cache="original", outcome="miss") == 1
    assert sample(text, counted, cache="original", outcome="hit") == 1
    requests = "darkroom_gateway_requests_total"
    route = "/images/{image_id}/render"
    assert sample(text, requests, route=route, status="200", method="GET") == 3
    assert sample(text, "darkroom_gateway_request_seconds_count", route=route, method="GET") == 3
    assert image not in text


def test_readyz_is_ready_with_both_backends(backends: Backends) -> None:
    client, catalog, processor = recorded_gateway(backends)
    with client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert [path for path, _, _ in catalog.calls] == ["/readyz"]
    assert [path for path, _, _ in processor.calls] == ["/healthz"]


def test_readyz_names_an_unreachable_backend(backends: Backends) -> None:
    settings = Settings(catalog_url="http://catalog", processor_url="http://processor")
    with gateway_client(
        settings, httpx.ASGITransport(app=backends.catalog), httpx.MockTransport(refused)
    ) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert error["message"].startswith("processor: The processor at http://processor")
    assert "catalog" not in error["message"]


def test_readyz_passes_on_a_catalog_that_is_not_ready(backends: Backends) -> None:
    def store_down(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "store_unavailable", "message": "the metadata store is down"}}
        return httpx.Response(503, json=body)

    settings = Settings(catalog_url="http://catalog", processor_url="http://processor")
    with gateway_client(
        settings, httpx.MockTransport(store_down), httpx.ASGITransport(app=backends.processor)
    ) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("catalog: The catalog failed with status 503")
    assert "the metadata store is down" in message


def test_metrics_and_probes_are_plain_and_open(backends: Backends) -> None:
    client, _, _ = recorded_gateway(backends)
    with client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE darkroom_gateway_cache_requests_total counter" in response.text
