"""One request id through three real services, in every service's JSON log lines."""

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.stack import Service, Stack, running_stack

pytestmark = pytest.mark.e2e

JSON_LOGS = {"LOG_FORMAT": "json"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {name: JSON_LOGS for name in ("catalog", "processor", "gateway")}
    with running_stack(tmp_path_factory.mktemp("request-id"), env) as running:
        yield running


def log_lines(service: Service) -> list[dict[str, Any]]:
    """Every line of the service's log, each parsed as the JSON object it must be."""
    lines = service.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def lines_with(service: Service, request_id: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The service's log lines carrying ``request_id``, waiting briefly for the first."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [line for line in log_lines(service) if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def an_image(stack: Stack) -> str:
    """The id of one image the catalog holds."""
    items = httpx.get(f"{stack.catalog.url}/v1/images", params={"limit": 1}).json()["items"]
    assert items, "the catalog holds no image"
    return str(items[0]["id"])


def test_a_given_id_is_in_the_json_lines_of_all_three_services(stack: Stack) -> None:
    given = f"e2e-{uuid.uuid4().hex}"
    image = an_image(stack)
    response = httpx.get(
        f"{stack.gateway.url}/images/{image}/thumb",
        headers={"X-Request-ID": given},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given
    routes = {
        "gateway": {"/images/{image_id}/thumb"},
        "catalog": {"/v1/images/{image_id}", "/v1/images/{image_id}/content"},
        "processor": {"/v1/pipeline", "/v1/process"},
    }
    for service in stack.services():
        lines = lines_with(service, given)
        assert lines, f"no line of the {service.name} log carries {given}"
        for line in lines:
            assert {"time", "level", "logger", "message", "request_id"} <= set(line)
        access = {line["route"] for line in lines if line["logger"] == f"{service.name}.access"}
        assert access == routes[service.name], service.name
        for line in lines:
            if "route" in line:
                assert line["path"].startswith("/") and line["status"] == 200
                assert line["method"] in {"GET", "POST"} and line["duration_ms"] >= 0


def test_a_request_without_an_id_gets_one_passed_on(stack: Stack) -> None:
    image = an_image(stack)
    response = httpx.get(f"{stack.gateway.url}/images/{image}", timeout=30)
    assert response.status_code == 200
    created = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(created)
    assert lines_with(stack.gateway, created)
    catalog_lines = lines_with(stack.catalog, created)
    assert any(line["route"] == "/v1/images/{image_id}" for line in catalog_lines)


def test_every_log_line_is_json(stack: Stack) -> None:
    httpx.get(f"{stack.gateway.url}/no/such/page", timeout=30)
    for service in stack.services():
        lines = log_lines(service)  # json.loads fails on any other line
        assert lines, service.name
        assert all(isinstance(line, dict) for line in lines)


def test_readiness_follows_the_backends(stack: Stack) -> None:
    for service in stack.services():
        ready = httpx.get(f"{service.url}/readyz", timeout=10)
        assert ready.status_code == 200, (service.name, ready.text)
        assert ready.json()["status"] == "ready"
    with stack.processor.hung():
        started = time.monotonic()
        response = httpx.get(f"{stack.gateway.url}/readyz", timeout=10)
        seconds = time.monotonic() - started
        assert httpx.get(f"{stack.gateway.url}/healthz", timeout=10).status_code == 200
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("processor: The processor did not answer within 2 s")
    assert "catalog" not in message
    assert seconds < 3.0
    assert httpx.get(f"{stack.gateway.url}/readyz", timeout=10).status_code == 200


def test_each_service_serves_its_metrics(stack: Stack) -> None:
    for service in stack.services():
        response = httpx.get(f"{service.url}/metrics", timeout=10)
        assert response.status_code == 200
        assert f"darkroom_{service.name}_requests_total{{" in response.text
