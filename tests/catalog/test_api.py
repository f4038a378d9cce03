"""The catalog's HTTP API through TestClient, with real sample photos."""

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.config import Settings
from catalog.main import create_app
from catalog.store.mongo import MongoImageStore
from tests.contract.mongomock_store import mongomock_store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
SIZES = {
    "astronaut.png": (512, 512),
    "camera.png": (512, 512),
    "chelsea.png": (451, 300),
    "coffee.png": (600, 400),
    "rocket.jpg": (640, 427),
    "hubble_deep_field.jpg": (1000, 872),
    "retina.jpg": (1411, 1411),
    "grace_hopper.jpg": (512, 600),
}

MakeClient = Callable[..., TestClient]


@pytest.fixture(params=["sqlite", "mongomock"])
def make_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeClient]:
    """Clients of the app on each store: the API must not change with the backend."""
    clients: list[TestClient] = []
    mongo = mongomock_store()[0] if request.param == "mongomock" else None

    def make(**overrides: Any) -> TestClient:
        settings = Settings(
            store=f"sqlite:///{tmp_path / 'catalog.db'}", blobs=tmp_path / "blobs", **overrides
        )
        client = TestClient(create_app(settings=settings, store=mongo))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def upload(client: TestClient, name: str, data: bytes | None = None) -> Any:
    body = (SAMPLES / name).read_bytes() if data is None else data
    return client.post("/v1/images", params={"name": name}, content=body)


@pytest.fixture
def uploaded(client: TestClient) -> dict[str, dict[str, Any]]:
    records = {}
    for name in SAMPLE_NAMES:
        response = upload(client, name)
        assert response.status_code == 201, response.text
        records[name] = response.json()
    return records


def error_of(response: Any) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "service": "catalog"})


def test_upload_then_upload_again(client: TestClient) -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    first = upload(client, "rocket.jpg")
    assert first.status_code == 201
    record = first.json()
    sha = hashlib.sha256(data).hexdigest()
    assert record["id"] == sha[:20]
    assert first.headers["location"] == f"/v1/images/{sha[:20]}"
    assert {k: record[k] for k in ("name", "sha256", "format", "mode", "width", "height")} == {
        "name": "rocket.jpg", "sha256": sha, "format": "jpeg", "mode": "RGB",
        "width": 640, "height": 427,
    }  # fmt: skip
    assert (record["pixels"], record["aspect"], record["orientation"]) == (273280, 1.4988,
                                                                           "landscape")  # fmt: skip
    assert (record["bytes"], record["exif_orientation"]) == (len(data), 1)
    assert record["created"].endswith(("Z", "+00:00"))
    second = upload(client, "another-name.jpg", data)
    assert second.status_code == 200
    assert second.json() == record


def test_get_image(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    record = uploaded["camera.png"]
    response = client.get(f"/v1/images/{record['id']}")
    assert (response.status_code, response.json()) == (200, record)


@pytest.mark.parametrize(
    "image_id", ["0123456789abcdef0123", "nothex", "a.b", "ABCDEF0123456789ABCD", "0" * 64]
)
def test_unknown_or_malformed_id_is_404(client: TestClient, image_id: str) -> None:
    for path in (f"/v1/images/{image_id}", f"/v1/images/{image_id}/content"):
        status, code, _ = error_of(client.get(path))
        assert (status, code) == (404, "image_not_found")
    status, code, _ = error_of(client.delete(f"/v1/images/{image_id}"))
    assert (status, code) == (404, "image_not_found")


@pytest.mark.parametrize(
    "path", ["/v1/images/..%2F..%2Fetc%2Fpasswd", "/v1/images/../../etc/passwd/content"]
)
def test_path_traversal_is_a_plain_404(client: TestClient, path: str) -> None:
    status, code, _ = error_of(client.get(path))
    assert (status, code) == (404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(client: TestClient) -> None:
    response = client.put("/v1/images")
    assert error_of(response)[:2] == (405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


LIST_FILTERS = [
    ({"min_width": 512, "max_width": 640},
     {"astronaut.png", "camera.png", "coffee.png", "rocket.jpg", "grace_hopper.jpg"}),
    ({"min_height": 600}, {"grace_hopper.jpg", "hubble_deep_field.jpg", "retina.jpg"}),
    ({"max_height": 427}, {"chelsea.png", "coffee.png", "rocket.jpg"}),
    ({"min_width": 1000}, {"hubble_deep_field.jpg", "retina.jpg"}),
    ({"max_width": 511}, {"chelsea.png"}),
    ({"min_width": 513, "max_height": 599}, {"coffee.png", "rocket.jpg"}),
    ({"format": "jpeg", "orientation": "landscape"}, {"rocket.jpg", "hubble_deep_field.jpg"}),
    ({"orientation": "square"}, {"astronaut.png", "camera.png", "retina.jpg"}),
    ({"name": "HUBBLE"}, {"hubble_deep_field.jpg"}),
    ({"min_pixels": 1_000_000}, {"retina.jpg"}),
]  # fmt: skip


@pytest.mark.parametrize(("params", "expected"), LIST_FILTERS)
def test_list_filters(
    client: TestClient,
    uploaded: dict[str, dict[str, Any]],
    params: dict[str, Any],
    expected: set[str],
) -> None:
    response = client.get("/v1/images", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {item["name"] for item in body["items"]} == expected
    assert body["next_cursor"] is None


@pytest.mark.parametrize(("params", "expected"), LIST_FILTERS)
def test_count_takes_the_list_filters(
    client: TestClient,
    uploaded: dict[str, dict[str, Any]],
    params: dict[str, Any],
    expected: set[str],
) -> None:
    response = client.get("/v1/images/count", params=params)
    assert response.status_code == 200, response.text
    assert response.json() == {"count": len(expected), "exact": True}


def test_count_stops_at_its_limit(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    def count(**params: Any) -> Any:
        return client.get("/v1/images/count", params=params).json()

    assert count() == {"count": 8, "exact": True}
    assert count(limit=8) == {"count": 8, "exact": True}
    assert count(limit=7) == {"count": 7, "exact": False}
    assert count(limit=1, format="png") == {"count": 1, "exact": False}
    assert count(limit=3, format="png", orientation="square") == {"count": 2, "exact": True}


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"sort": "width"}, "sort", "sort: Extra inputs are not permitted"),
        ({"cursor": "abc"}, "cursor", "cursor: Extra inputs are not permitted"),
        ({"limit": 0}, "limit", "limit: Input should be greater than or equal to 1"),
        ({"limit": 100_001}, "limit", "limit: Input should be less than or equal to 100000"),
        ({"min_width": 9, "max_width": 8}, "min_width", "min_width must not exceed max_width"),
        ({"format": "jxl"}, "format", "format.0: Input should be 'jpeg'"),
        ({"name": "a\x00b"}, "name", "name: must not contain control characters"),
    ],
)
def test_bad_count_is_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str, fragment: str
) -> None:
    status, code, message = error_of(client.get("/v1/images/count", params=params))
    assert (status, code) == (422, "invalid_parameter")
    assert field in message
    assert fragment in message


def test_repeated_format_filter(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    response = client.get("/v1/images?format=png&format=jpeg&limit=200")
    assert len(response.json()["items"]) == 8


def test_sort_by_width(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    items = client.get("/v1/images", params={"sort": "-width"}).json()["items"]
    assert [item["width"] for item in items] == [1411, 1000, 640, 600, 512, 512, 512, 451]
    tied = [item["id"] for item in items if item["width"] == 512]
    assert tied == sorted(tied, reverse=True)
    items = client.get("/v1/images", params={"sort": "height"}).json()["items"]
    assert [item["height"] for item in items] == [300, 400, 427, 512, 512, 600, 872, 1411]


def test_paging_with_next_cursor(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "name", "limit": 3}
    for expected_size in (3, 3, 2):
        body = client.get("/v1/images", params=params).json()
        assert len(body["items"]) == expected_size
        seen.extend(item["name"] for item in body["items"])
        params["cursor"] = body["next_cursor"]
    assert params["cursor"] is None
    assert seen == sorted(SAMPLE_NAMES)


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"min_width": 600, "max_width": 500}, "min_width", "min_width must not exceed max_width"),
        ({"min_height": 9, "max_height": 8}, "min_height", "min_height must not exceed max_height"),
        ({"limit": 0}, "limit", "limit: Input should be greater than or equal to 1"),
        ({"limit": 201}, "limit", "limit: Input should be less than or equal to 200"),
        ({"min_width": 0}, "min_width", "min_width: Input should be greater than or equal to 1"),
        ({"min_width": "wide"}, "min_width", "min_width: Input should be a valid integer"),
        ({"sort": "size"}, "sort", "sort: Input should be 'width', '-width'"),
        ({"format": "jxl"}, "format", "format.0: Input should be 'jpeg'"),
        ({"orientation": "diagonal"}, "orientation", "orientation: Input should be 'landscape'"),
        ({"cursor": "not-a-cursor"}, "cursor", "cursor: not a valid cursor"),
        ({"cursor": "W10"}, "cursor", "cursor: not a valid cursor"),
        ({"min_widht": 5}, "min_widht", "min_widht: Extra inputs are not permitted"),
        ({"name": "a\x00b"}, "name", "name: must not contain control characters"),
        ({"name": ""}, "name", "name: String should have at least 1 character"),
    ],
)
def test_bad_query_is_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str, fragment: str
) -> None:
    status, code, message = error_of(client.get("/v1/images", params=params))
    assert (status, code) == (422, "invalid_parameter")
    assert field in message
    assert fragment in message


def test_cursor_from_another_sort_is_422(
    client: TestClient, uploaded: dict[str, dict[str, Any]]
) -> None:
    cursor = client.get("/v1/images", params={"sort": "width", "limit": 2}).json()["next_cursor"]
    assert cursor is not None
    response = client.get("/v1/images", params={"sort": "-created", "cursor": cursor})
    status, code, message = error_of(response)
    assert (status, code) == (422, "invalid_parameter")
    assert message == "cursor: the cursor belongs to sort=width, not sort=-created"


def test_content_bytes_etag_and_304(
    client: TestClient, uploaded: dict[str, dict[str, Any]]
) -> None:
    record = uploaded["grace_hopper.jpg"]
    response = client.get(f"/v1/images/{record['id']}/content")
    assert response.status_code == 200
    assert response.content == (SAMPLES / "grace_hopper.jpg").read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["etag"] == f'"{record["sha256"]}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    for header in (f'"{record["sha256"]}"', f'"x", W/"{record["sha256"]}"', "*"):
        cached = client.get(f"/v1/images/{record['id']}/content", headers={"If-None-Match": header})
        assert (cached.status_code, cached.content) == (304, b"")
        assert cached.headers["etag"] == f'"{record["sha256"]}"'
    stale = client.get(f"/v1/images/{record['id']}/content", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200


def test_png_content_type(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    response = client.get(f"/v1/images/{uploaded['camera.png']['id']}/content")
    assert response.headers["content-type"] == "image/png"


def test_body_over_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=1000)
    status, code, message = error_of(upload(client, "rocket.jpg"))
    assert (status, code) == (413, "body_too_large")
    assert "1000" in message
    assert client.get("/v1/stats").json()["count"] == 0


def test_streamed_body_over_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"\0" * 500

    response = client.post("/v1/images", params={"name": "x"}, content=chunks())
    assert error_of(response)[:2] == (413, "body_too_large")


def test_too_many_pixels_is_413(make_client: MakeClient) -> None:
    client = make_client(max_pixels=512 * 512 - 1)
    status, code, message = error_of(upload(client, "camera.png"))
    assert (status, code) == (413, "image_too_large")
    assert "512x512" in message


def test_text_is_415(client: TestClient) -> None:
    status, code, message = error_of(upload(client, "notes.txt", b"just some text\n"))
    assert (status, code) == (415, "unreadable_image")
    assert "not an image" in message


def test_zero_bytes_is_415(client: TestClient) -> None:
    status, code, message = error_of(upload(client, "empty.png", b""))
    assert (status, code) == (415, "unreadable_image")
    assert "empty body" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.png", "evil.png"),
        ("  holiday\x00\x1b[31m photo.png\n", "holiday[31m photo.png"),
        ("...hidden.png...", "hidden.png"),
        ("/", None),
        ("\x01\x02", None),
        ("a" * 300 + ".png", "a" * 255),
    ],
)
def test_hostile_names_are_cleaned(client: TestClient, raw: str, expected: str | None) -> None:
    response = upload(client, raw, (SAMPLES / "chelsea.png").read_bytes())
    assert response.status_code == 201
    record = response.json()
    assert record["name"] == (expected or f"{record['id']}.png")


def test_missing_name_falls_back_to_id(client: TestClient) -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    record = client.post("/v1/images", content=data).json()
    assert record["name"] == f"{record['id']}.jpg"


def test_delete(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    record = uploaded["coffee.png"]
    response = client.delete(f"/v1/images/{record['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"/v1/images/{record['id']}").status_code == 404
    assert client.get(f"/v1/images/{record['id']}/content").status_code == 404
    assert client.delete(f"/v1/images/{record['id']}").status_code == 404
    assert client.get("/v1/stats").json()["count"] == 7
    assert upload(client, "coffee.png").status_code == 201


def test_stats(client: TestClient, uploaded: dict[str, dict[str, Any]]) -> None:
    assert client.get("/v1/stats").json() == {
        "count": 8,
        "formats": {"jpeg": 4, "png": 4, "webp": 0, "gif": 0, "tiff": 0, "bmp": 0, "avif": 0,
                    "heic": 0},
        "orientations": {"landscape": 4, "portrait": 1, "square": 3},
        "min_width": 451,
        "max_width": 1411,
        "min_height": 300,
        "max_height": 1411,
    }  # fmt: skip


def test_multipart_upload_takes_the_file_part_and_its_name(client: TestClient) -> None:
    data = (SAMPLES / "rocket.jpg").read_bytes()
    response = client.post(
        "/v1/images",
        data={"note": "ignored"},
        files={"file": ("holiday/rocket launch.jpg", data, "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["name"], record["sha256"]) == (
        "rocket launch.jpg", hashlib.sha256(data).hexdigest(),
    )  # fmt: skip
    assert client.get(f"/v1/images/{record['id']}/content").content == data
    again = client.post(
        "/v1/images", params={"name": "renamed.jpg"}, files={"file": ("x.jpg", data)}
    )
    assert (again.status_code, again.json()["name"]) == (200, "rocket launch.jpg")


def test_multipart_name_query_overrides_the_file_name(client: TestClient) -> None:
    data = (SAMPLES / "chelsea.png").read_bytes()
    response = client.post("/v1/images", params={"name": "cat.png"}, files={"file": ("x", data)})
    assert (response.status_code, response.json()["name"]) == (201, "cat.png")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
         "no 'file' part"),
        (b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nunfinished', "ends before"),
        (b"no boundary at all", "Expected boundary character"),
    ],
)  # fmt: skip
def test_malformed_multipart_is_400(client: TestClient, body: bytes, fragment: str) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    status, code, message = error_of(client.post("/v1/images", content=body, headers=headers))
    assert (status, code) == (400, "malformed_upload")
    assert fragment in message


def test_multipart_without_boundary_is_400(client: TestClient) -> None:
    headers = {"Content-Type": "multipart/form-data"}
    status, code, message = error_of(client.post("/v1/images", content=b"x", headers=headers))
    assert (status, code, message) == (
        400, "malformed_upload", "multipart/form-data without a boundary in Content-Type",
    )  # fmt: skip


def test_multipart_over_limit_is_413_while_streaming(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=1000)
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(10):
            yield b"\xff" * 500

    response = client.post(
        "/v1/images", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert error_of(response)[:2] == (413, "body_too_large")
    assert client.get("/v1/stats").json()["count"] == 0


def test_multipart_text_file_is_415(client: TestClient) -> None:
    response = client.post("/v1/images", files={"file": ("notes.txt", b"hello\n", "text/plain")})
    assert error_of(response)[:2] == (415, "unreadable_image")


def test_unreachable_mongodb_is_503_with_retry_after() -> None:
    # Nothing listens on port 9: the app starts anyway, and every store call is a 503.
    store = MongoImageStore.from_url("mongodb://127.0.0.1:9/darkroom?serverSelectionTimeoutMS=50")
    with TestClient(create_app(store=store)) as client:
        assert client.get("/healthz").status_code == 200
        calls = [
            client.get("/v1/images", params={"min_width": 10}),
            client.get("/v1/stats"),
            client.get(f"/v1/images/{'a' * 20}"),
            client.get(f"/v1/images/{'a' * 20}/content"),
            client.delete(f"/v1/images/{'a' * 20}"),
            upload(client, "rocket.jpg"),
        ]
        for response in calls:
            status, code, message = error_of(response)
            assert (status, code) == (503, "store_unavailable"), response.text
            assert message.startswith("the MongoDB server cannot be reached")
            assert response.headers["retry-after"] == "5"
    store.close()
