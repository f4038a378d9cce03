"""Pages degrade when processing is down, stay light, keep the pipeline and the filters."""

import io
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gateway.clients import OperationInfo
from gateway.config import Settings
from gateway.forms import build_step, form_fields
from tests.gateway.conftest import Backends, gateway_client


def closed_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def processor_down(backends: Backends) -> Iterator[TestClient]:
    settings = Settings(catalog_url="http://catalog", processor_url=closed_port())
    with gateway_client(settings, httpx.ASGITransport(app=backends.catalog)) as client:
        yield client


# --- processor down: show what the catalog can serve ----------------------------------------


def test_gallery_without_the_processor_shows_placeholders_and_a_banner(
    processor_down: TestClient,
) -> None:
    response = processor_down.get("/")
    assert response.status_code == 200
    assert 'id="processing-unavailable"' in response.text
    assert response.text.count('class="card"') == 8
    assert "/thumb" not in response.text
    assert response.text.count('src="/static/unavailable.svg"') == 8
    assert processor_down.get("/static/unavailable.svg").status_code == 200


def test_thumbnail_without_the_processor_is_a_placeholder_picture(
    processor_down: TestClient, ids: dict[str, str]
) -> None:
    response = processor_down.get(f"/images/{ids['rocket.jpg']}/thumb")
    assert response.status_code == 503
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["retry-after"]
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"<svg")


def test_render_without_the_processor_is_a_picture_for_img_and_a_page_for_people(
    processor_down: TestClient, ids: dict[str, str]
) -> None:
    url = f"/images/{ids['rocket.jpg']}/render"
    as_img = processor_down.get(url, params={"ops": "invert"}, headers={"Accept": "image/*"})
    assert (as_img.status_code, as_img.headers["content-type"]) == (503, "image/svg+xml")
    as_page = processor_down.get(url, params={"ops": "invert"}, headers={"Accept": "text/html"})
    assert as_page.status_code == 503
    assert as_page.template.name == "error.html"


def test_image_page_without_the_processor_keeps_the_original_and_metadata(
    processor_down: TestClient, ids: dict[str, str], backends: Backends
) -> None:
    image = ids["rocket.jpg"]
    response = processor_down.get(f"/images/{image}", params={"ops": "grayscale"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert 'id="processing-unavailable"' in response.text
    assert f'src="/images/{image}/original"' in response.text
    assert "640 × 427" in response.text
    record = TestClient(backends.catalog).get(f"/v1/images/{image}").json()
    assert record["sha256"] in response.text
    assert 'id="process-form"' not in response.text
    assert response.context["result"] is None


# --- display-sized renditions ----------------------------------------------------------------


def test_a_large_original_is_shown_as_display_sized_renditions(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["retina.jpg"]  # 1411 x 1411: more than twice the 650 px pane
    response = client.get(f"/images/{image}")
    original = response.context["original"]
    assert original.full == f"/images/{image}/original"
    assert "resize%3Awidth%3D650" in original.srcset and "650w" in original.srcset
    assert "resize%3Awidth%3D1300" in original.src
    assert f'href="/images/{image}/original"' in response.text
    shown = client.get(original.src.replace("&amp;", "&"))
    assert shown.status_code == 200
    assert Image.open(io.BytesIO(shown.content)).size == (1300, 1300)


def test_a_large_result_is_shown_small_with_the_full_result_a_click_away(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["retina.jpg"]
    response = client.get(f"/images/{image}", params={"ops": "gradient_x"})
    assert response.status_code == 200
    shown = response.context["shown"]
    assert shown.full == response.context["result_url"]
    pipeline = parse_qs(urlsplit(shown.src).query)["ops"][0]
    assert pipeline == "gradient_x|resize:width=1300"
    small = client.get(shown.src)
    full = client.get(shown.full)
    assert Image.open(io.BytesIO(small.content)).size == (1300, 1300)
    assert Image.open(io.BytesIO(full.content)).size == (1411, 1411)
    assert len(small.content) < len(full.content)


# --- the pipeline editor never loses steps ---------------------------------------------------


def test_apply_changes_only_the_last_step(client: TestClient, ids: dict[str, str]) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}",
        params={
            "ops": "grayscale|invert|rotate:degrees=30",
            "op": "rotate",
            "p.rotate.degrees": "45",
            "action": "apply",
        },
    )
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["location"]).query)["ops"] == [
        "grayscale|invert|rotate:degrees=45"
    ]


def test_a_refused_step_keeps_the_pipeline_and_its_result(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}",
        params={
            "ops": "grayscale|invert",
            "op": "rotate",
            "p.rotate.degrees": "1000",
            "action": "add",
        },
    )
    assert response.status_code == 422
    context = response.context
    assert context["ops"] == "grayscale|invert"
    assert [step for step, _ in context["steps"]] == ["grayscale", "invert"]
    assert context["result"] is not None
    assert context["result"].pipeline == "grayscale|invert"
    assert "rotate.degrees" in context["error"].message
    # The refused value stays in the form, to be corrected.
    assert context["selected"] == "rotate"
    assert 'name="p.rotate.degrees"' in response.text
    assert re.search(r'name="p\.rotate\.degrees"[^>]*value="1000"', response.text)


def test_each_step_can_be_removed_on_its_own(client: TestClient, ids: dict[str, str]) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}", params={"ops": "grayscale|invert|flip", "format": "png"}
    )
    links = [parse_qs(urlsplit(url).query) for _, url in response.context["steps"]]
    assert [link["ops"] for link in links] == [
        ["invert|flip"],
        ["grayscale|flip"],
        ["grayscale|invert"],
    ]
    assert all(link["format"] == ["png"] for link in links)


# --- small things ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["thumb", "render?ops=invert", "original"])
def test_head_answers_like_get_without_a_body(
    client: TestClient, ids: dict[str, str], suffix: str
) -> None:
    url = f"/images/{ids['rocket.jpg']}/{suffix}"
    got = client.get(url)
    head = client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    for header in ("content-type", "etag", "cache-control", "content-length"):
        assert head.headers[header] == got.headers[header]


def test_favicon(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).format == "ICO"
    assert 'rel="icon"' in client.get("/").text


def test_the_gallery_link_keeps_the_active_filters(client: TestClient, ids: dict[str, str]) -> None:
    client.get("/", params={"min_width": "600", "sort": "-width"})
    page = client.get(f"/images/{ids['rocket.jpg']}")
    link = re.search(r'<a href="([^"]*)" id="nav-gallery">', page.text)
    assert link is not None
    assert parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query) == {
        "min_width": ["600"],
        "sort": ["-width"],
    }
    client.get("/")  # Reset: the plain gallery is remembered too
    reset = client.get(f"/images/{ids['rocket.jpg']}").text
    assert 'id="nav-gallery"' in reset
    assert "min_width" not in reset


def test_downloads_are_named_after_the_photo_and_the_pipeline(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}/render",
        params={"ops": "rotate:degrees=90|grayscale", "format": "png", "download": "1"},
    )
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    name = unquote(disposition.split("filename*=UTF-8''")[1])
    assert name.startswith("rocket-rotate-degrees-90")
    assert "grayscale" in name
    assert name.endswith(".png")


CONDITIONAL = OperationInfo(
    name="blur",
    summary="A blur with per-method parameters.",
    params={
        "properties": {
            "method": {"enum": ["gaussian", "box"], "type": "string", "default": "gaussian"},
            "sigma": {
                "type": "number",
                "default": 2,
                "x-applies-when": {"method": ["gaussian"]},
            },
            "size": {"type": "integer", "default": None, "x-applies-when": {"method": ["box"]}},
        }
    },
)


def test_fields_that_do_not_apply_to_the_chosen_method_are_left_out() -> None:
    fields = {field.name: field for field in form_fields(CONDITIONAL)}
    assert fields["sigma"].applies_when == {"method": ("gaussian",)}
    assert fields["method"].applies_when == {}
    submitted = {"p.blur.method": "box", "p.blur.sigma": "2", "p.blur.size": "5"}
    assert build_step(CONDITIONAL, submitted) == "blur:method=box,size=5"
    assert build_step(CONDITIONAL, {"p.blur.sigma": "3", "p.blur.size": "5"}) == "blur:sigma=3"


# --- what one request may hold ----------------------------------------------------------------


def test_results_and_originals_over_the_byte_bound_are_refused(
    backends: Backends, ids: dict[str, str]
) -> None:
    settings = Settings(
        catalog_url="http://catalog", processor_url="http://processor", max_image_bytes=80_000
    )
    with gateway_client(
        settings,
        httpx.ASGITransport(app=backends.catalog),
        httpx.ASGITransport(app=backends.processor),
    ) as client:
        rocket = ids["rocket.jpg"]  # 113 kB: over the bound as an original
        refused = client.get(f"/images/{rocket}/render", params={"ops": "invert"})
        assert refused.status_code == 413
        assert "too large" in refused.text
        small = ids["grace_hopper.jpg"]  # 61 kB
        thumb = {"ops": "resize:width=100"}
        assert client.get(f"/images/{small}/render", params=thumb).status_code == 200
        big = {"ops": "resize:width=2000", "format": "png"}  # a result of megabytes
        assert client.get(f"/images/{small}/render", params=big).status_code == 413
        # Originals are streamed through, not held: the bound does not apply to them.
        original = client.get(f"/images/{rocket}/original")
        assert original.status_code == 200
        assert len(original.content) == 112_525


def test_a_heic_original_is_shown_as_jpeg(
    client: TestClient, backends: Backends, ids: dict[str, str]
) -> None:
    from tests.imaging import encoded, upright_picture

    catalog = TestClient(backends.catalog)
    added = catalog.post(
        "/v1/images", params={"name": "phone.heic"}, content=encoded("heic", upright_picture())
    )
    assert added.status_code in (200, 201), added.text
    image = added.json()["id"]
    try:
        page = client.get(f"/images/{image}")
        original = page.context["original"]
        assert "/original" not in original.src
        shown = client.get(original.src)
        assert shown.status_code == 200
        assert shown.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(shown.content)).size == (48, 32)
    finally:
        catalog.delete(f"/v1/images/{image}")
