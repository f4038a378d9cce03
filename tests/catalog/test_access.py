"""Bearer keys: writes need a write key once keys are set, reads a read key once read keys are.

Every route is driven through the real app (TestClient); the keys must never come back in a
response or reach a log line.
"""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import ValidationError

from catalog.config import Settings
from catalog.main import create_app

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ROCKET = (SAMPLES / "rocket.jpg").read_bytes()
CAMERA = (SAMPLES / "camera.png").read_bytes()

WRITE_KEY = "w-3c7f1b9e2a4d6058"
OTHER_WRITE_KEY = "w-second-91d2e0a7b6c4"
READ_KEY = "r-5e8a0c2f4b6d1397"
ALL_KEYS = (WRITE_KEY, OTHER_WRITE_KEY, READ_KEY)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Any]:
    """Clients of the app on SQLite with the given settings (keys among them)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(
            store=f"sqlite:///{tmp_path / 'catalog.db'}",
            blobs=tmp_path / "blobs",
            sweep_interval_s=0,
            **overrides,
        )
        client = TestClient(create_app(settings=settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(
    client: TestClient,
    data: bytes = ROCKET,
    headers: dict[str, str] | dict[str, bytes] | None = None,
) -> Response:
    response: Response = client.post(
        "/v1/images", params={"name": "rocket.jpg"}, content=data, headers=headers
    )
    return response


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (set(body), set(body["error"]), body["error"]["code"]) == (
        {"error"},
        {"code", "message"},
        code,
    )
    for key in ALL_KEYS:
        assert key not in response.text
        assert all(key not in value for value in response.headers.values())


def test_without_keys_every_route_is_open(make_client: Any) -> None:
    client = make_client()
    created = upload(client)
    assert created.status_code == 201
    image_id = created.json()["id"]
    assert client.get("/v1/images").json()["items"][0]["id"] == image_id
    assert client.get(f"/v1/images/{image_id}/content").content == ROCKET
    assert client.delete(f"/v1/images/{image_id}").status_code == 204


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_an_empty_setting_is_not_configured(
    make_client: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CATALOG_API_KEYS", value)
    monkeypatch.setenv("CATALOG_READ_KEYS", value)
    client = make_client()
    assert (client.app.state.settings.api_keys, client.app.state.settings.read_keys) == ((), ())
    assert upload(client).status_code == 201


def test_upload_needs_a_write_key(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY)
    missing = upload(client)
    assert_error(missing, 401, "missing_key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(upload(client, headers=bearer("not-the-key")), 403, "wrong_key")
    assert client.get("/v1/stats").json()["count"] == 0  # refused uploads stored nothing
    assert upload(client, headers=bearer(WRITE_KEY)).status_code == 201


def test_delete_needs_a_write_key(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY)
    image_id = upload(client, headers=bearer(WRITE_KEY)).json()["id"]
    path = f"/v1/images/{image_id}"
    missing = client.delete(path)
    assert_error(missing, 401, "missing_key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(client.delete(path, headers=bearer("not-the-key")), 403, "wrong_key")
    assert client.get(path).status_code == 200  # still there
    assert client.delete(path, headers=bearer(WRITE_KEY)).status_code == 204
    assert client.get(path).status_code == 404


def test_the_key_is_checked_before_the_id_or_the_body(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY)
    # No key: a 401, whether or not the image exists or the body is an image.
    assert_error(client.delete("/v1/images/no-such-id"), 401, "missing_key")
    assert_error(upload(client, b"not an image"), 401, "missing_key")
    assert_error(client.delete("/v1/images/no-such-id", headers=bearer("wrong")), 403, "wrong_key")


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", WRITE_KEY, f"Token {WRITE_KEY}"],
)
def test_anything_but_a_bearer_key_is_missing(make_client: Any, authorization: str) -> None:
    client = make_client(api_keys=WRITE_KEY)
    assert_error(upload(client, headers={"Authorization": authorization}), 401, "missing_key")


@pytest.mark.parametrize(
    "presented",
    [
        WRITE_KEY[:-1],  # a prefix
        WRITE_KEY + "0",  # the key and more
        WRITE_KEY.upper(),
        READ_KEY,  # a read key does not write
        f"{WRITE_KEY},{OTHER_WRITE_KEY}",  # the setting's text is not a key
        "é" * 20,  # not ASCII
    ],
)
def test_near_misses_are_wrong_keys(make_client: Any, presented: str) -> None:
    client = make_client(api_keys=f"{WRITE_KEY},{OTHER_WRITE_KEY}", read_keys=READ_KEY)
    # Bytes: a header carries any octets, and the server reads them as Latin-1.
    headers = {"Authorization": f"Bearer {presented}".encode()}
    assert_error(upload(client, headers=headers), 403, "wrong_key")


def test_the_scheme_is_case_insensitive(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY)
    assert upload(client, headers={"Authorization": f"bearer {WRITE_KEY}"}).status_code == 201


def test_every_one_of_several_keys_writes(make_client: Any) -> None:
    client = make_client(api_keys=f"{WRITE_KEY},{OTHER_WRITE_KEY}")
    assert upload(client, ROCKET, bearer(WRITE_KEY)).status_code == 201
    assert upload(client, CAMERA, bearer(OTHER_WRITE_KEY)).status_code == 201


def test_keys_in_the_environment_are_split_and_trimmed(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_API_KEYS", f"  {WRITE_KEY} ,\t{OTHER_WRITE_KEY}\n,")
    monkeypatch.setenv("CATALOG_READ_KEYS", f" {READ_KEY} ")
    client = make_client()
    assert [key.get_secret_value() for key in client.app.state.settings.api_keys] == [
        WRITE_KEY,
        OTHER_WRITE_KEY,
    ]
    assert upload(client, ROCKET, bearer(WRITE_KEY)).status_code == 201
    assert upload(client, CAMERA, bearer(OTHER_WRITE_KEY)).status_code == 201
    assert client.get("/v1/stats", headers=bearer(READ_KEY)).status_code == 200
    # The surrounding whitespace was the setting's, not the key's.
    assert_error(upload(client, headers=bearer(f"{WRITE_KEY} ,")), 403, "wrong_key")


def test_reads_stay_open_with_write_keys_only(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY)
    image_id = upload(client, headers=bearer(WRITE_KEY)).json()["id"]
    assert client.get("/v1/images").status_code == 200
    assert client.get("/v1/images/count").json() == {"count": 1, "exact": True}
    assert client.get(f"/v1/images/{image_id}").status_code == 200
    assert client.get(f"/v1/images/{image_id}/content").content == ROCKET
    assert client.get("/v1/stats").status_code == 200


def test_read_keys_guard_every_read(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY, read_keys=READ_KEY)
    image_id = upload(client, headers=bearer(WRITE_KEY)).json()["id"]
    reads = [
        "/v1/images",
        "/v1/images/count",
        f"/v1/images/{image_id}",
        f"/v1/images/{image_id}/content",
        "/v1/stats",
    ]
    for path in reads:
        missing = client.get(path)
        assert_error(missing, 401, "missing_key")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert_error(client.get(path, headers=bearer("not-the-key")), 403, "wrong_key")
        assert client.get(path, headers=bearer(READ_KEY)).status_code == 200
        assert client.get(path, headers=bearer(WRITE_KEY)).status_code == 200, path
    # A read key reads, and only reads.
    assert_error(
        client.delete(f"/v1/images/{image_id}", headers=bearer(READ_KEY)), 403, "wrong_key"
    )


OPEN = {"/healthz", "/readyz", "/metrics"}


def test_health_readiness_and_metrics_stay_open(make_client: Any) -> None:
    client = make_client(api_keys=WRITE_KEY, read_keys=READ_KEY)
    for path in sorted(OPEN):
        assert client.get(path).status_code == 200, path


def test_every_api_route_is_guarded(make_client: Any) -> None:
    """A route added without a guard fails here: with both kinds of keys, /v1 answers 401."""
    client = make_client(api_keys=WRITE_KEY, read_keys=READ_KEY)
    paths = client.get("/openapi.json").json()["paths"]
    routes = [(m.upper(), p) for p, methods in paths.items() for m in methods if p not in OPEN]
    assert len(routes) == 10
    for method, route in routes:
        assert route.startswith("/v1/"), route
        path = route.replace("{image_id}", "0" * 20)
        assert_error(client.request(method, path), 401, "missing_key")


def test_read_keys_without_write_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(read_keys=READ_KEY)
    assert "CATALOG_API_KEYS" in str(error.value)
    assert READ_KEY not in str(error.value)


def test_keys_stay_out_of_reprs_errors_and_logs(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(api_keys=f"{WRITE_KEY},{OTHER_WRITE_KEY}", read_keys=READ_KEY)
    settings = client.app.state.settings
    upload(client, headers=bearer(WRITE_KEY))
    upload(client, headers=bearer("a-wrong-key"))
    client.get("/v1/stats", headers=bearer(READ_KEY))
    with pytest.raises(ValidationError) as error:
        Settings(api_keys=WRITE_KEY, max_pixels=0)
    shown = [repr(settings), str(settings), str(error.value), caplog.text]
    for key in ALL_KEYS:
        assert all(key not in text for text in shown)
