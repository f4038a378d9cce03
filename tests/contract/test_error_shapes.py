"""Every service answers every failure in its one shape: 404, 405, 422 and an unexpected 500.

The catalog and the processor answer ``{"error": {"code", "message"}}`` as JSON; the gateway
answers with its HTML error page. A route that raises an unexpected exception is added to
each app to inject the 500.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from catalog.config import Settings as CatalogSettings
from catalog.main import create_app as create_catalog
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway
from processor.main import create_app as create_processor


def explode() -> None:
    """A route whose code has a bug."""
    raise RuntimeError("secret internal detail")


@dataclass(frozen=True)
class Case:
    """How to drive one service to each failure."""

    build: Callable[[Path], FastAPI]
    wrong_method: tuple[str, str]
    invalid: str
    invalid_field: str


CASES = {
    "catalog": Case(
        build=lambda data: create_catalog(
            settings=CatalogSettings(store=f"sqlite:///{data / 'c.db'}", blobs=data / "blobs")
        ),
        wrong_method=("PUT", "/v1/images"),
        invalid="/v1/images?min_width=wide",
        invalid_field="min_width",
    ),
    "processor": Case(
        build=lambda data: create_processor(),
        wrong_method=("GET", "/v1/process"),
        invalid="/v1/pipeline?ops=rotate:degrees=999",
        invalid_field="rotate.degrees",
    ),
    "gateway": Case(
        # Nothing listens on port 9 (discard): the errors here never reach a backend.
        build=lambda data: create_gateway(
            settings=GatewaySettings(
                catalog_url="http://127.0.0.1:9", processor_url="http://127.0.0.1:9"
            )
        ),
        wrong_method=("POST", "/"),
        invalid="/?min_width=wide",
        invalid_field="min_width",
    ),
}


@pytest.fixture(params=sorted(CASES))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TestClient]]:
    name: str = request.param
    app = CASES[name].build(tmp_path)
    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield name, client


def error_of(name: str, response: Response) -> tuple[str, str]:
    """The (code, message) of an error response in the service's own shape."""
    if name == "gateway":
        assert response.headers["content-type"].startswith("text/html")
        found = re.search(r'data-status="(\d+)" data-code="([a-z_]+)"', response.text)
        assert found is not None, response.text
        assert int(found.group(1)) == response.status_code
        message = re.search(r'<p class="error-message">(.*?)</p>', response.text, re.S)
        assert message is not None
        return found.group(2), message.group(1)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]["code"], body["error"]["message"]


def test_unknown_route_is_404(service: tuple[str, TestClient]) -> None:
    name, client = service
    response = client.get("/no/such/page")
    assert response.status_code == 404
    code, message = error_of(name, response)
    assert code == "not_found"
    assert "/no/such/page" in message


def test_wrong_method_is_405(service: tuple[str, TestClient]) -> None:
    name, client = service
    method, path = CASES[name].wrong_method
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"]
    code, _ = error_of(name, response)
    assert code == "method_not_allowed"


def test_invalid_parameter_is_422_naming_it(service: tuple[str, TestClient]) -> None:
    name, client = service
    response = client.get(CASES[name].invalid)
    assert response.status_code == 422
    code, message = error_of(name, response)
    assert code == "invalid_parameter"
    assert CASES[name].invalid_field in message


def test_unexpected_exception_is_a_500_in_the_same_shape(service: tuple[str, TestClient]) -> None:
    name, client = service
    response = client.get("/explode")
    assert response.status_code == 500
    assert response.text != "Internal Server Error"
    code, message = error_of(name, response)
    assert code == "internal_error"
    assert "secret internal detail" not in response.text
    assert message
