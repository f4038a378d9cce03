"""Uploading and deleting through the gateway, against the real catalog app."""

import asyncio
import io
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from catalog.config import Settings as CatalogSettings
from catalog.main import create_app as create_catalog
from gateway.clients import CatalogClient
from gateway.config import Settings
from gateway.routes import templates
from gateway.uploads import MAX_FILES, Outcome, receive_files
from tests.gateway.conftest import SAMPLES, Backends, gateway_client

JSON = {"Accept": "application/json"}
# Small enough for a noise JPEG of 400 × 300 to be over it, large enough for 64 × 48.
SMALL_LIMIT = 40_000
KEY = "catalog-secret"


def photo(seed: int, width: int = 64, height: int = 48) -> bytes:
    """A JPEG of noise: distinct bytes for every seed, and hard to compress."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def outcomes(response: httpx.Response) -> list[Outcome]:
    found: list[Outcome] = response.context["outcomes"]  # type: ignore[attr-defined]
    return found


def catalog(backends: Backends) -> TestClient:
    """The catalog app as the gateway reaches it (its lifespan runs in the fixture)."""
    return TestClient(backends.catalog)


def catalog_status(backends: Backends, image_id: str) -> int:
    return int(catalog(backends).get(f"/v1/images/{image_id}").status_code)


def catalog_name(backends: Backends, image_id: str) -> str:
    return str(catalog(backends).get(f"/v1/images/{image_id}").json()["name"])


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """A catalog that takes writes only with KEY, and bodies up to SMALL_LIMIT bytes."""
    data = tmp_path_factory.mktemp("guarded")
    app = create_catalog(
        settings=CatalogSettings(
            store=f"sqlite:///{data / 'catalog.db'}",
            blobs=data / "blobs",
            api_keys=(SecretStr(KEY),),
            max_body_bytes=SMALL_LIMIT,
        )
    )
    with TestClient(app):
        yield app


def guarded_client(catalog: FastAPI, key: str) -> TestClient:
    settings = Settings(
        catalog_url="http://catalog", processor_url="http://processor", catalog_key=key
    )
    return gateway_client(settings, httpx.ASGITransport(app=catalog))


def test_the_upload_page_has_a_labelled_multiple_file_form(client: TestClient) -> None:
    response = client.get("/upload")
    assert response.status_code == 200
    assert response.template.name == "upload.html"
    text = response.text
    assert 'method="post" action="/upload" enctype="multipart/form-data"' in text
    assert '<input type="file" id="upload-files" name="file" multiple accept="image/*">' in text
    assert '<label for="upload-files"' in text
    # Linked once, in the head and at the end: the script binds each zone once anyway.
    assert text.count('src="/static/upload.js"') == 1
    assert text.count('href="/static/upload.css"') == 1
    assert 'id="nav-upload"' in client.get("/").text


def test_the_drop_zone_partial_brings_its_own_style_and_script() -> None:
    request = Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
    )
    html = templates.get_template("dropzone.html").render(request=request)
    assert '<link rel="stylesheet" href="/static/upload.css">' in html
    assert '<script src="/static/upload.js" defer></script>' in html
    assert 'action="/upload" enctype="multipart/form-data"' in html
    assert "deleted-notice" not in html


def test_several_files_in_one_form_are_each_reported(
    client: TestClient, backends: Backends, ids: dict[str, str]
) -> None:
    rocket = (SAMPLES / "rocket.jpg").read_bytes()
    whole = photo(1, 256, 192)
    response = client.post(
        "/upload",
        files=[
            ("file", ("new.jpg", photo(0), "image/jpeg")),
            ("file", ("again-rocket.jpg", rocket, "image/jpeg")),
            ("file", ("notes.txt", b"not a picture at all", "text/plain")),
            ("file", ("cut.jpg", whole[: len(whole) // 2], "image/jpeg")),
        ],
    )
    assert response.status_code == 200
    assert response.template.name == "upload.html"
    added, present, not_image, truncated = outcomes(response)
    assert (added.name, added.status) == ("new.jpg", "added")
    assert (present.status, present.image_id) == ("present", ids["rocket.jpg"])
    assert "rocket.jpg" in present.message
    assert (not_image.status, not_image.http_status) == ("refused", 415)
    assert "not an image" in not_image.message
    assert (truncated.status, truncated.http_status) == ("refused", 415)
    assert "truncated" in truncated.message
    assert f'href="/images/{added.image_id}"' in response.text
    assert f'href="/images/{ids["rocket.jpg"]}"' in response.text
    assert not_image.message in response.text
    assert added.image_id is not None
    assert catalog_name(backends, added.image_id) == "new.jpg"


def test_json_answers_one_file_with_the_catalogs_words(
    client: TestClient, backends: Backends
) -> None:
    upload = [("file", ("json.jpg", photo(2), "image/jpeg"))]
    first = client.post("/upload", files=upload, headers=JSON)
    assert first.status_code == 201
    body = first.json()
    assert set(body) == {"name", "status", "id", "url", "message"}
    assert (body["name"], body["status"]) == ("json.jpg", "added")
    assert body["url"] == f"/images/{body['id']}"

    again = client.post("/upload", files=upload, headers=JSON)
    assert again.status_code == 200
    assert again.json()["status"] == "present"
    assert again.json()["id"] == body["id"]

    junk = b"GIF89a but not really"
    refused = client.post("/upload", files=[("file", ("x.gif", junk, "image/gif"))], headers=JSON)
    direct = catalog(backends).post("/v1/images", content=junk)
    assert refused.status_code == direct.status_code == 415
    assert refused.json()["status"] == "refused"
    assert refused.json()["message"] == direct.json()["error"]["message"]


def test_several_files_with_json_are_a_list(client: TestClient) -> None:
    response = client.post(
        "/upload",
        files=[
            ("file", ("one.jpg", photo(3), "image/jpeg")),
            ("file", ("two.txt", b"text", "text/plain")),
        ],
        headers=JSON,
    )
    assert response.status_code == 200
    assert [item["status"] for item in response.json()] == ["added", "refused"]


def test_names_reach_the_catalog_as_sent(client: TestClient, backends: Backends) -> None:
    name = "café ☕ «1».jpg"
    response = client.post("/upload", files=[("file", (name, photo(4), "image/jpeg"))])
    (outcome,) = outcomes(response)
    assert outcome.name == name
    assert outcome.image_id is not None
    assert catalog_name(backends, outcome.image_id) == name
    # Quotes escaped in the form the gateway reads stay quotes in the part it writes.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="say \\"hi\\".jpg"'
        b"\r\nContent-Type: image/jpeg\r\n\r\n" + photo(13) + b"\r\n--b--\r\n"
    )
    quoted = client.post(
        "/upload", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    (outcome,) = outcomes(quoted)
    assert outcome.name == 'say "hi".jpg'
    assert outcome.image_id is not None
    assert catalog_name(backends, outcome.image_id) == 'say "hi".jpg'


def test_a_file_over_the_catalogs_limit_is_refused_and_the_next_still_arrives(
    guarded: FastAPI,
) -> None:
    big = photo(5, 400, 300)
    assert len(big) > SMALL_LIMIT
    with guarded_client(guarded, KEY) as client:
        response = client.post(
            "/upload",
            files=[
                ("file", ("big.jpg", big, "image/jpeg")),
                ("file", ("small.jpg", photo(6), "image/jpeg")),
            ],
        )
        alone = client.post("/upload", files=[("file", ("big.jpg", big, "image/jpeg"))])
        as_json = client.post(
            "/upload", files=[("file", ("big.jpg", big, "image/jpeg"))], headers=JSON
        )
    assert response.status_code == 200
    refused, added = outcomes(response)
    assert (refused.status, refused.http_status) == ("refused", 413)
    assert f"limit of {SMALL_LIMIT}" in refused.message
    assert added.status == "added"
    assert alone.status_code == 413
    assert f"limit of {SMALL_LIMIT}" in alone.text
    assert as_json.status_code == 413
    assert as_json.json()["status"] == "refused"


def test_a_form_takes_a_bounded_number_of_files(client: TestClient) -> None:
    files = [("file", (f"{i}.txt", b"x", "text/plain")) for i in range(MAX_FILES + 2)]
    response = client.post("/upload", files=files)
    reported = outcomes(response)
    assert len(reported) == MAX_FILES + 1
    assert reported[-1].name == "2 more files"
    assert f"At most {MAX_FILES} files" in reported[-1].message


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ([("file", ("", b"", "application/octet-stream"))], None),  # the form, nothing chosen
        ([("other", ("a.jpg", b"bytes", "image/jpeg"))], None),  # no field named file
        (None, {"file": "a.jpg"}),  # not multipart
        (None, None),  # no body at all
    ],
)
def test_an_empty_submission_asks_to_choose_a_file(
    client: TestClient, files: Any, data: Any
) -> None:
    response = client.post("/upload", files=files, data=data)
    assert response.status_code == 422
    assert response.template.name == "upload.html"
    assert "Choose at least one image file" in response.text
    assert 'id="upload-files"' in response.text
    as_json = client.post("/upload", files=files, data=data, headers=JSON)
    assert as_json.status_code == 422
    assert as_json.json()["status"] == "refused"


def test_a_malformed_form_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/upload",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nab',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 422
    assert "form" in response.context["error"].message


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_catalog_down_is_a_503_page() -> None:
    settings = Settings(catalog_url=closed_port(), processor_url=closed_port())
    files = [("file", ("a.jpg", photo(7), "image/jpeg"))]
    with gateway_client(settings) as client:
        page = client.post("/upload", files=files)
        as_json = client.post("/upload", files=files, headers=JSON)
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    assert "cannot be reached" in page.context["error"].message
    assert 'id="upload-error"' in page.text
    assert as_json.status_code == 503
    assert as_json.json()["status"] == "failed"


def test_the_key_is_sent_and_the_file_streams_as_a_named_part() -> None:
    seen: list[httpx.Request] = []
    bodies: list[bytes] = []
    record = {
        "id": "ab" * 10,
        "name": "key.jpg",
        "sha256": "ab" * 32,
        "format": "jpeg",
        "mode": "RGB",
        "width": 64,
        "height": 48,
        "pixels": 3072,
        "aspect": 1.333,
        "orientation": "landscape",
        "bytes": 100,
        "exif_orientation": 1,
        "created": "2026-01-01T00:00:00Z",
    }

    async def catalog(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        bodies.append(await request.aread())
        return httpx.Response(201, json=record)

    settings = Settings(
        catalog_url="http://catalog", processor_url="http://processor", catalog_key=KEY
    )
    data = photo(8)
    with gateway_client(settings, httpx.MockTransport(catalog)) as client:
        response = client.post("/upload", files=[("file", ("key.jpg", data, "image/jpeg"))])
    assert response.status_code == 200
    (request,) = seen
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    # Streamed: the gateway sends the part as it arrives, without knowing its length.
    assert "content-length" not in request.headers
    assert b'name="file"; filename="key.jpg"' in bodies[0]
    assert data in bodies[0]
    assert KEY not in response.text


@pytest.mark.parametrize(
    ("key", "status", "code"), [("", 401, "missing_key"), ("wrong", 403, "wrong_key")]
)
def test_a_missing_or_wrong_catalog_key_is_a_clear_error(
    guarded: FastAPI, key: str, status: int, code: str
) -> None:
    with guarded_client(guarded, key) as client:
        page = client.post("/upload", files=[("file", ("k.jpg", photo(9), "image/jpeg"))])
        as_json = client.post(
            "/upload", files=[("file", ("k.jpg", photo(9), "image/jpeg"))], headers=JSON
        )
    assert page.status_code == status
    error = page.context["error"]
    assert error.code == code
    assert "GATEWAY_CATALOG_KEY" in error.message
    assert "GATEWAY_CATALOG_KEY" in page.text
    assert as_json.status_code == status
    assert "GATEWAY_CATALOG_KEY" in as_json.json()["message"]


def test_with_the_right_key_delete_goes_through_and_a_wrong_one_is_explained(
    guarded: FastAPI,
) -> None:
    with guarded_client(guarded, KEY) as client:
        added = client.post(
            "/upload", files=[("file", ("keep.jpg", photo(10), "image/jpeg"))], headers=JSON
        )
        assert added.status_code == 201
        image_id = added.json()["id"]
    with guarded_client(guarded, "wrong") as client:
        refused = client.post(f"/images/{image_id}/delete")
    assert refused.status_code == 403
    assert refused.template.name == "confirm_delete.html"
    assert "GATEWAY_CATALOG_KEY" in refused.text
    with guarded_client(guarded, KEY) as client:
        assert client.get(f"/images/{image_id}/delete").status_code == 200
        assert client.post(f"/images/{image_id}/delete").status_code == 303
        assert client.get(f"/images/{image_id}/delete").status_code == 404


def test_cross_site_uploads_and_deletes_are_refused(
    client: TestClient, backends: Backends, ids: dict[str, str]
) -> None:
    upload = client.post(
        "/upload",
        files=[("file", ("evil.jpg", photo(11), "image/jpeg"))],
        headers={"Origin": "https://evil.example"},
    )
    assert upload.status_code == 403
    listed = catalog(backends).get("/v1/images", params={"limit": 200}).json()["items"]
    names = [item["name"] for item in listed]
    assert "evil.jpg" not in names

    image_id = ids["coffee.png"]
    delete = client.post(f"/images/{image_id}/delete", headers={"Sec-Fetch-Site": "cross-site"})
    assert delete.status_code == 403
    assert catalog_status(backends, image_id) == 200


def test_delete_asks_first_then_deletes_and_returns_to_the_gallery(
    client: TestClient, backends: Backends
) -> None:
    added = client.post(
        "/upload", files=[("file", ("doomed.jpg", photo(12), "image/jpeg"))], headers=JSON
    )
    image_id = added.json()["id"]
    assert f'href="/images/{image_id}/delete"' in client.get(f"/images/{image_id}").text

    confirm = client.get(f"/images/{image_id}/delete")
    assert confirm.status_code == 200
    assert confirm.template.name == "confirm_delete.html"
    assert confirm.context["image"].name == "doomed.jpg"
    assert f'src="/images/{image_id}/thumb"' in confirm.text
    assert f'<form method="post" action="/images/{image_id}/delete"' in confirm.text
    assert f'<a href="/images/{image_id}" id="cancel-delete">Cancel</a>' in confirm.text
    assert catalog_status(backends, image_id) == 200  # asking deletes nothing

    client.get("/?min_width=10&sort=name")  # the gallery remembers where the visitor was
    deleted = client.post(f"/images/{image_id}/delete")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/?min_width=10&sort=name&deleted=doomed.jpg"
    assert catalog_status(backends, image_id) == 404
    assert client.get(f"/images/{image_id}").status_code == 404
    gallery = client.get(deleted.headers["location"])
    assert gallery.status_code == 200
    assert "doomed.jpg" not in [image.name for image in gallery.context["images"]]

    again = client.post(f"/images/{image_id}/delete")
    assert again.status_code == 404


def test_the_gallery_notice_names_the_deleted_image() -> None:
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"deleted=%3Cb%3Edoomed.jpg",
            "headers": [],
        }
    )
    html = templates.get_template("dropzone.html").render(request=request)
    assert 'id="deleted-notice"' in html
    assert "“&lt;b&gt;doomed.jpg” was deleted." in html


def test_upload_pages_have_no_inline_script_or_style(
    client: TestClient, ids: dict[str, str]
) -> None:
    pages = [
        client.get("/upload"),
        client.post("/upload", files=[("file", ("x.txt", b"x", "text/plain"))]),
        client.get(f"/images/{ids['rocket.jpg']}/delete"),
    ]
    for page in pages:
        assert "<script>" not in page.text and "<style" not in page.text
        assert " style=" not in page.text


def test_a_form_broken_off_mid_file_stores_nothing(backends: Backends) -> None:
    data = photo(14, 256, 192)
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="half.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    messages: list[Message] = [
        {"type": "http.request", "body": head + data[: len(data) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        if len(messages) == 1:
            await asyncio.sleep(0.2)  # the catalog has the first half and waits for the rest
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/upload",
        "query_string": b"",
        "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
    }

    async def visitor_leaves() -> None:
        transport = httpx.ASGITransport(app=backends.catalog)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as http:
            with pytest.raises(ClientDisconnect):
                await receive_files(Request(scope, receive), CatalogClient(http))

    asyncio.run(visitor_leaves())
    listed = catalog(backends).get("/v1/images", params={"limit": 200}).json()["items"]
    assert "half.jpg" not in [item["name"] for item in listed]
