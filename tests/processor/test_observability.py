"""Request ids, access lines, JSON logs, readiness and Prometheus metrics of the processor."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from processor.config import Settings
from processor.main import create_app
from tests.metrics import sample

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ROCKET = (SAMPLES / "rocket.jpg").read_bytes()
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def json_lines(err: str) -> list[dict[str, Any]]:
    """The JSON objects of captured stderr, one per line; any other line fails the test."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def explode() -> None:
    """A route that fails unexpectedly."""
    raise RuntimeError("boom")


def test_request_ids_are_echoed_replaced_or_created() -> None:
    with TestClient(create_app(settings=Settings())) as client:
        given = client.get("/healthz", headers={"X-Request-ID": "abc.DEF_12-3"})
        assert given.headers["x-request-id"] == "abc.DEF_12-3"
        longest = "a" * 128
        assert (
            client.get("/healthz", headers={"X-Request-ID": longest}).headers["x-request-id"]
            == longest
        )
        for bad in ("has space", "a" * 129, "semi;colon", "a/b", ""):
            replaced = client.get("/healthz", headers={"X-Request-ID": bad})
            assert GENERATED_ID.fullmatch(replaced.headers["x-request-id"]), bad
        first = client.get("/v1/operations").headers["x-request-id"]
        second = client.get("/v1/operations").headers["x-request-id"]
        assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second)
        assert first != second


def test_json_log_lines_carry_the_request_id_and_the_access_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(settings=Settings(log_format="json"))) as client:
        capsys.readouterr()
        response = client.post(
            "/v1/process",
            params={"ops": "grayscale"},
            content=ROCKET,
            headers={"X-Request-ID": "trace-42"},
        )
        assert response.status_code == 200
        lines = json_lines(capsys.readouterr().err)
    access = [line for line in lines if line["logger"] == "processor.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "trace-42"
    assert line["level"] == "INFO"
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "POST",
        "/v1/process",
        "/v1/process",
        200,
    )
    assert line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_text_log_lines_name_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(settings=Settings(log_format="text"))) as client:
        capsys.readouterr()
        client.get("/v1/operations", headers={"X-Request-ID": "plain-7"})
        err = capsys.readouterr().err
    assert re.search(r"INFO +processor\.access \[plain-7\] GET /v1/operations 200 ", err), err


def test_an_unexpected_error_is_counted_logged_and_keeps_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(settings=Settings(log_format="json"))
    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        response = client.get("/explode", headers={"X-Request-ID": "err-1"})
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "err-1"
        lines = json_lines(capsys.readouterr().err)
        text = client.get("/metrics").text
    assert any(line["request_id"] == "err-1" and line.get("status") == 500 for line in lines), lines
    requests = "darkroom_processor_requests_total"
    assert sample(text, requests, route="/explode", status="500", method="GET") == 1


def test_metrics_label_route_templates_and_time_operations() -> None:
    with TestClient(create_app(settings=Settings())) as client:
        ops = "resize:width=100|grayscale|grayscale"
        assert client.post("/v1/process", params={"ops": ops}, content=ROCKET).status_code == 200
        client.get("/no/such/path/1")
        client.get("/no/such/path/2")
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert (
        sample(text, "darkroom_processor_request_seconds_count", route="/v1/process", method="POST")
        == 1
    )
    assert (
        sample(
            text, "darkroom_processor_requests_total", route="unmatched", status="404", method="GET"
        )
        == 2
    )
    assert "/no/such/path" not in text
    seconds = "darkroom_processor_operation_seconds_count"
    assert sample(text, seconds, operation="resize") == 1
    # A repeated operation is one observation per job: the job's time in it.
    assert sample(text, seconds, operation="grayscale") == 1
    assert sample(text, seconds, operation="decode") is None
    assert sample(text, seconds, operation="encode") is None
    assert sample(text, "darkroom_processor_stage_seconds_count", stage="encode") == 1


def test_each_app_counts_its_own_requests() -> None:
    with (
        TestClient(create_app(settings=Settings())) as first,
        TestClient(create_app(settings=Settings())) as second,
    ):
        first.get("/v1/operations")
        first.get("/v1/operations")
        second.get("/v1/operations")
        counts = [
            sample(
                client.get("/metrics").text,
                "darkroom_processor_requests_total",
                route="/v1/operations",
                status="200",
                method="GET",
            )
            for client in (first, second)
        ]
    assert counts == [2, 1]


def test_readyz_reports_the_lanes_once_the_processor_takes_jobs() -> None:
    app = create_app(settings=Settings(max_jobs=3, express_jobs=1))
    # Without its lifespan the app has no job slots yet: not ready.
    starting = TestClient(app).get("/readyz")
    assert starting.status_code == 503
    assert starting.json()["error"]["code"] == "shutting_down"
    with TestClient(app) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "lanes": {
            "heavy": {"slots": 3, "running": 0, "waiting": 0},
            "express": {"slots": 1, "running": 0, "waiting": 0},
        },
    }


def test_health_readiness_and_metrics_need_no_key() -> None:
    settings = Settings.model_validate({"api_keys": "secret"})
    with TestClient(create_app(settings=settings)) as client:
        assert client.post("/v1/info", content=ROCKET).status_code == 401
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200, path
