"""Request ids, JSON access lines, readiness and Prometheus metrics of the catalog."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.blobs import BlobStore
from catalog.config import Settings
from catalog.main import create_app
from catalog.store.sqlite import SqliteImageStore
from tests.metrics import sample

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ROCKET = (SAMPLES / "rocket.jpg").read_bytes()
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of a catalog kept under ``tmp_path``."""
    return Settings(
        store=f"sqlite:///{tmp_path / 'catalog.db'}", blobs=tmp_path / "blobs", **overrides
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings=settings(tmp_path, log_format="json"))) as test_client:
        yield test_client


def test_request_ids_are_echoed_or_created(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "gw-1.a_b"}).headers["x-request-id"]
        == "gw-1.a_b"
    )
    replaced = client.get("/healthz", headers={"X-Request-ID": "not valid!"})
    assert GENERATED_ID.fullmatch(replaced.headers["x-request-id"])
    missing = client.get("/v1/images/" + "0" * 20)
    assert missing.status_code == 404
    assert GENERATED_ID.fullmatch(missing.headers["x-request-id"])


def test_access_lines_are_json_with_the_route_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Built here, so its log handler writes to the stderr capsys reads.
    with TestClient(create_app(settings=settings(tmp_path, log_format="json"))) as client:
        uploaded = client.post("/v1/images", params={"name": "rocket.jpg"}, content=ROCKET)
        image_id = uploaded.json()["id"]
        capsys.readouterr()
        response = client.get(f"/v1/images/{image_id}", headers={"X-Request-ID": "trace-9"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (line,) = [line for line in lines if line["logger"] == "catalog.access"]
    assert {key: line[key] for key in ("logger", "level", "request_id", "method", "status")} == {
        "logger": "catalog.access",
        "level": "INFO",
        "request_id": "trace-9",
        "method": "GET",
        "status": 200,
    }
    assert line["path"] == f"/v1/images/{image_id}"
    assert line["route"] == "/v1/images/{image_id}"
    assert line["message"].startswith(f"GET /v1/images/{image_id} 200 ")
    assert isinstance(line["duration_ms"], float)


def test_metrics_count_route_templates_and_time_the_store(client: TestClient) -> None:
    created = client.post("/v1/images", params={"name": "rocket.jpg"}, content=ROCKET)
    image_id = created.json()["id"]
    for _ in range(3):
        assert client.get(f"/v1/images/{image_id}").status_code == 200
    client.get("/v1/images/" + "f" * 20)
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert image_id not in text
    requests = "darkroom_catalog_requests_total"
    route = "/v1/images/{image_id}"
    assert sample(text, requests, route=route, status="200", method="GET") == 3
    assert sample(text, requests, route=route, status="404", method="GET") == 1
    assert sample(text, requests, route="/v1/images", status="201", method="POST") == 1
    latency = "darkroom_catalog_request_seconds_count"
    assert sample(text, latency, route=route, method="GET") == 4
    store = "darkroom_catalog_store_seconds_count"
    # The 404 for an id that cannot be looked up still asks the store once.
    assert sample(text, store, operation="get") == 4
    assert sample(text, store, operation="add") == 1
    assert (sample(text, "darkroom_catalog_store_seconds_sum", operation="get") or 0) > 0


def test_readyz_is_ready_while_the_store_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_names_the_store_when_it_fails(tmp_path: Path) -> None:
    store = SqliteImageStore(tmp_path / "catalog.db", BlobStore(tmp_path / "blobs"))
    try:
        with TestClient(create_app(settings=settings(tmp_path), store=store)) as client:
            assert client.get("/readyz").status_code == 200
            store.connection().execute("DROP TABLE images")
            response = client.get("/readyz")
            assert client.get("/healthz").status_code == 200
    finally:
        store.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "metadata store" in error["message"]
    assert "no such table: images" in error["message"]


def test_probes_and_metrics_need_no_key(tmp_path: Path) -> None:
    keyed = settings(tmp_path, api_keys="write-key", read_keys="read-key")
    with TestClient(create_app(settings=keyed)) as client:
        assert client.get("/v1/stats").status_code == 401
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200, path
