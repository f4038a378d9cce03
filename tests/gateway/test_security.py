"""Headers on every response, cross-site state changes refused, keys sent to the backends."""

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.config import Settings
from gateway.security import CONTENT_SECURITY_POLICY
from tests.gateway.conftest import gateway_client


@pytest.mark.parametrize(
    "path",
    ["/", "/static/style.css", "/favicon.ico", "/no/such/page", "/images/nope"],
)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"


def test_images_carry_them_too(client: TestClient, ids: dict[str, str]) -> None:
    for suffix in ("thumb", "original", "render?ops=invert"):
        response = client.get(f"/images/{ids['rocket.jpg']}/{suffix}")
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_policy_forbids_inline_script_and_style_and_framing() -> None:
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_pages_have_no_inline_script_or_style(client: TestClient, ids: dict[str, str]) -> None:
    for path in ("/", f"/images/{ids['rocket.jpg']}?ops=invert", "/nope"):
        text = client.get(path).text
        assert "<script>" not in text and "<style" not in text and " style=" not in text
        assert " on" + "click=" not in text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.testserver"},
        {"Origin": "https://evil.example/<script>"},
    ],
)
def test_cross_site_state_changes_are_refused(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/", headers=headers)
    assert response.status_code == 403
    assert "<script>" not in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}],
)
def test_same_site_and_script_requests_pass_to_the_route(
    client: TestClient, headers: dict[str, str]
) -> None:
    # "/" takes no POST: getting the 405 proves the request went past the check.
    assert client.post("/", headers=headers).status_code == 405


def test_reads_are_never_refused_for_their_origin(client: TestClient) -> None:
    response = client.get("/", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200


def test_the_backend_keys_are_sent(ids: dict[str, str]) -> None:
    seen: dict[str, set[str | None]] = {"catalog": set(), "processor": set()}

    def catalog(request: httpx.Request) -> httpx.Response:
        seen["catalog"].add(request.headers.get("authorization"))
        record = {
            "id": "ab" * 10,
            "name": "a.jpg",
            "sha256": "ab" * 32,
            "format": "jpeg",
            "mode": "RGB",
            "width": 4,
            "height": 3,
            "pixels": 12,
            "aspect": 1.333,
            "orientation": "landscape",
            "bytes": 100,
            "exif_orientation": 1,
            "created": "2026-01-01T00:00:00Z",
        }
        return httpx.Response(200, json={"items": [record], "next_cursor": None})

    def processor(request: httpx.Request) -> httpx.Response:
        seen["processor"].add(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "ok", "service": "processor"})

    settings = Settings(
        catalog_url="http://catalog",
        processor_url="http://processor",
        catalog_key=" catalog-secret ",
        processor_key="processor-secret",
    )
    with gateway_client(
        settings, httpx.MockTransport(catalog), httpx.MockTransport(processor)
    ) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert seen["catalog"] == {"Bearer catalog-secret"}
    assert seen["processor"] == {"Bearer processor-secret"}
    assert "secret" not in page.text
