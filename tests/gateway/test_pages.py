"""Gateway pages and image routes against the real catalog and processor apps."""

import html
import io
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gateway.config import Settings
from processor.codec import decode
from tests.gateway.conftest import SAMPLE_FILES, SAMPLES, Backends, gateway_client


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def names(response: httpx.Response) -> list[str]:
    return [image.name for image in response.context["images"]]  # type: ignore[attr-defined]


def test_gallery_lists_every_sample(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.template.name == "gallery.html"
    assert sorted(names(response)) == sorted(p.name for p in SAMPLE_FILES)
    # One thumbnail per image: its src (the srcset adds the same image at 2x).
    assert response.text.count('/thumb"') == len(SAMPLE_FILES)
    assert "base64" not in response.text


def test_gallery_filters_by_dimensions_and_ignores_blank_fields(client: TestClient) -> None:
    response = client.get(
        "/",
        params={"min_width": "600", "max_width": "700", "min_height": "", "max_height": ""},
    )
    assert response.status_code == 200
    assert sorted(names(response)) == ["coffee.png", "rocket.jpg"]
    tall = client.get("/", params={"min_height": "600", "sort": "height"})
    assert names(tall) == ["grace_hopper.jpg", "hubble_deep_field.jpg", "retina.jpg"]


def test_gallery_pages_with_the_catalog_cursor(backends: Backends) -> None:
    seen: list[str] = []
    url: str | None = "/?sort=width"
    with gateway_client(
        Settings(catalog_url="http://catalog", processor_url="http://processor", page_size=3),
        httpx.ASGITransport(app=backends.catalog),
        httpx.ASGITransport(app=backends.processor),
    ) as small_pages:
        pages = 0
        while url is not None and pages < 10:
            response = small_pages.get(url)
            assert response.status_code == 200
            seen += names(response)
            url = response.context["next_url"]
            pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(p.name for p in SAMPLE_FILES)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_width": "wide"}, "min_width"),
        ({"min_width": "0"}, "min_width"),
        ({"sort": "colour"}, "sort"),
    ],
)
def test_gallery_rejects_bad_filters_with_a_page_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 422
    assert response.template.name == "error.html"
    assert field in response.context["error"].message


def test_gallery_shows_a_query_the_catalog_refuses_above_the_form(client: TestClient) -> None:
    response = client.get("/", params={"min_width": "700", "max_width": "600"})
    assert response.status_code == 422
    assert response.template.name == "gallery.html"
    assert "min_width must not exceed max_width" in response.context["error"].message
    assert response.context["images"] == []
    assert 'name="min_width" min="1" step="1" value="700"' in response.text


def test_image_page_prefills_the_form_from_the_last_step(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}", params={"ops": "grayscale|rotate:degrees=30,expand=false"}
    )
    assert response.status_code == 200
    assert response.context["selected"] == "rotate"
    values = {operation.name: shown for operation, _, shown in response.context["operations"]}
    assert values["rotate"]["degrees"] == "30"
    assert values["rotate"]["expand"] == "false"
    assert values["rotate"]["interpolation"] == "bilinear"  # not in the step: its default
    assert values["gradient_x"]["mode"] == "signed"


def test_image_page_shows_metadata_and_forms_built_from_the_registry(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(f"/images/{ids['rocket.jpg']}")
    assert response.status_code == 200
    assert response.template.name == "image.html"
    context = response.context
    assert (context["image"].width, context["image"].height) == (640, 427)
    forms = {operation.name: fields for operation, fields, _ in context["operations"]}
    assert {"grayscale", "low_pass", "square_crop", "gradient_x", "gradient_y", "rotate"} <= set(
        forms
    )
    degrees = next(field for field in forms["rotate"] if field.name == "degrees")
    assert (degrees.kind, degrees.minimum, degrees.maximum) == ("number", -360, 360)
    assert 'name="p.rotate.degrees"' in response.text
    fill = next(field for field in forms["rotate"] if field.name == "fill")
    assert fill.kind == "text"
    assert "white" in fill.choices
    assert 'list="p.rotate.fill-choices"' in response.text
    assert context["result"] is None
    assert f'src="/images/{ids["rocket.jpg"]}/original"' in response.text


def test_form_submission_redirects_to_the_pipeline_url(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["rocket.jpg"]
    response = client.get(
        f"/images/{image}",
        params={
            "op": "rotate",
            "p.rotate.degrees": "90",
            "p.rotate.expand": "true",
            "p.low_pass.sigma": "9",
            "format": "png",
        },
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == f"/images/{image}"
    assert parse_qs(location.query) == {"ops": ["rotate:degrees=90,expand=true"], "format": ["png"]}

    added = client.get(
        f"/images/{image}",
        params={"ops": "grayscale", "op": "low_pass", "p.low_pass.sigma": "2", "action": "add"},
    )
    assert parse_qs(urlsplit(added.headers["location"]).query) == {
        "ops": ["grayscale|low_pass:sigma=2"]
    }


def test_form_values_cannot_smuggle_pipeline_syntax(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}",
        params={"op": "rotate", "p.rotate.degrees": "90|grayscale"},
    )
    assert response.status_code == 422
    assert "rotate.degrees" in response.text


def test_image_page_renders_the_result_beside_the_original(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}", params={"ops": "rotate:degrees=90", "format": "png"}
    )
    assert response.status_code == 200
    result = response.context["result"]
    assert (result.width, result.height) == (427, 640)
    assert result.pipeline.startswith("rotate:degrees=90")
    assert html.escape(response.context["result_url"]) in response.text


def test_processor_rejection_is_shown_on_the_page(client: TestClient, ids: dict[str, str]) -> None:
    response = client.get(f"/images/{ids['rocket.jpg']}", params={"ops": "rotate:degrees=1000"})
    assert response.status_code == 422
    assert "rotate.degrees" in response.context["error"].message
    unknown = client.get(f"/images/{ids['rocket.jpg']}", params={"ops": "sepia"})
    assert unknown.status_code == 404
    assert "sepia" in unknown.text


def test_render_returns_rot90_pixels_and_is_cached(client: TestClient, ids: dict[str, str]) -> None:
    url = f"/images/{ids['rocket.jpg']}/render"
    params = {"ops": "rotate:degrees=90", "format": "png"}
    first = client.get(url, params=params)
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    # The processor turns rocket.jpg's Adobe RGB into sRGB as it decodes; so does this.
    expected = np.rot90(decode((SAMPLES / "rocket.jpg").read_bytes(), max_pixels=10**8).pixels)
    assert np.array_equal(decoded(first.content), expected)

    results = client.app.state.renderer.results  # type: ignore[attr-defined]
    cached = len(results)
    again = client.get(url, params=params)
    assert again.content == first.content
    assert len(results) == cached
    etag = first.headers["etag"]
    assert client.get(url, params=params, headers={"If-None-Match": etag}).status_code == 304

    download = client.get(url, params={**params, "download": "1"})
    assert download.headers["content-disposition"].startswith("attachment;")


def test_thumb_and_original(client: TestClient, ids: dict[str, str]) -> None:
    thumb = client.get(f"/images/{ids['retina.jpg']}/thumb")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (320, 320)
    original = client.get(f"/images/{ids['chelsea.png']}/original")
    assert original.content == (SAMPLES / "chelsea.png").read_bytes()
    assert original.headers["content-type"] == "image/png"
    assert "immutable" in original.headers["cache-control"]
    again = client.get(
        f"/images/{ids['chelsea.png']}/original",
        headers={"If-None-Match": original.headers["etag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize("image_id", ["0" * 20, "not-an-id", "%2e%2e", "%2e%2e%2fhealthz"])
def test_unknown_and_hostile_ids_are_404_pages(client: TestClient, image_id: str) -> None:
    for suffix in ("", "/thumb", "/render", "/original"):
        response = client.get(f"/images/{image_id}{suffix}")
        assert response.status_code == 404, (image_id, suffix)
        assert response.headers["content-type"].startswith("text/html")


def test_bad_output_format_is_422(client: TestClient, ids: dict[str, str]) -> None:
    response = client.get(f"/images/{ids['rocket.jpg']}/render", params={"format": "gif"})
    assert response.status_code == 422
    assert "format" in response.text


def closed_port() -> str:
    """A loopback URL with nothing listening (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_catalog_down_is_a_503_page(backends: Backends) -> None:
    settings = Settings(catalog_url=closed_port(), processor_url=closed_port(), retry_after_s=7)
    with gateway_client(settings) as down:
        response = down.get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.template.name == "error.html"
    assert "catalog" in response.context["error"].message


def test_processor_down_is_a_503_page(backends: Backends, ids: dict[str, str]) -> None:
    settings = Settings(catalog_url="http://catalog", processor_url=closed_port())
    with gateway_client(
        settings,
        httpx.ASGITransport(app=backends.catalog),
    ) as down:
        response = down.get(f"/images/{ids['rocket.jpg']}/render", params={"ops": "grayscale"})
        page = down.get(f"/images/{ids['rocket.jpg']}")
    assert response.status_code == 503
    assert "processor" in response.text
    assert page.status_code == 503


def test_backend_500_becomes_503_without_a_traceback() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Traceback (most recent call last): secret")

    settings = Settings(catalog_url="http://catalog", processor_url="http://processor")
    with gateway_client(settings, httpx.MockTransport(broken)) as client:
        response = client.get("/")
    assert response.status_code == 503
    assert "secret" not in response.text


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "service": "gateway"}


def test_hex_fill_from_the_text_field_reaches_the_processor(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["rocket.jpg"]
    submitted = client.get(
        f"/images/{image}",
        params={"op": "rotate", "p.rotate.degrees": "30", "p.rotate.fill": "#ff0000"},
    )
    assert parse_qs(urlsplit(submitted.headers["location"]).query)["ops"] == [
        "rotate:degrees=30,fill=#ff0000"
    ]
    rendered = client.get(
        f"/images/{image}/render", params={"ops": "rotate:degrees=30,fill=#ff0000", "format": "png"}
    )
    assert rendered.status_code == 200
    assert tuple(decoded(rendered.content)[0, 0]) == (255, 0, 0)
