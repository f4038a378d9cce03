"""The gallery: every catalog filter, the result count, the empty state, high-DPI thumbnails."""

import html
import io
import re
from collections.abc import Iterator
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalog.models import FORMATS, ORIENTATIONS, SORT_KEYS
from gateway.config import Settings
from gateway.routes import SORTS, CatalogFormat, Orientation
from tests.gateway.conftest import SAMPLE_FILES, Backends, gateway_client

PNGS = {"astronaut.png", "camera.png", "chelsea.png", "coffee.png"}
JPEGS = {"grace_hopper.jpg", "hubble_deep_field.jpg", "retina.jpg", "rocket.jpg"}


class Catalog(httpx.AsyncBaseTransport):
    """The real catalog app, recording every request; ``count`` answers the count instead."""

    def __init__(self, backends: Backends, count: httpx.Response | None = None) -> None:
        self.app = httpx.ASGITransport(app=backends.catalog)
        self.count = count
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, then answer it."""
        self.requests.append(request)
        if self.count is not None and request.url.path == "/v1/images/count":
            return self.count
        return await self.app.handle_async_request(request)


def gallery_with(backends: Backends, catalog: Catalog, **settings: Any) -> TestClient:
    """A gateway in front of ``catalog`` and the real processor."""
    return gateway_client(
        Settings(catalog_url="http://catalog", processor_url="http://processor", **settings),
        catalog,
        httpx.ASGITransport(app=backends.processor),
    )


@pytest.fixture
def catalog(backends: Backends) -> Catalog:
    return Catalog(backends)


@pytest.fixture
def gallery(backends: Backends, catalog: Catalog) -> Iterator[TestClient]:
    with gallery_with(backends, catalog) as client:
        yield client


def names(response: httpx.Response) -> set[str]:
    return {image.name for image in response.context["images"]}  # type: ignore[attr-defined]


def cards(response: httpx.Response) -> list[str]:
    """The names shown in the grid, as the page says them."""
    return [
        html.unescape(name)
        for name in re.findall(r'<span class="name">([^<]*)</span>', response.text)
    ]


def visible_text(response: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.text)))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"format": "png"}, PNGS),
        ({"format": "jpeg", "orientation": "landscape"}, {"hubble_deep_field.jpg", "rocket.jpg"}),
        ({"orientation": "portrait"}, {"grace_hopper.jpg"}),
        ({"orientation": "square"}, {"astronaut.png", "camera.png", "retina.jpg"}),
        ({"name": "HOP"}, {"grace_hopper.jpg"}),
        ({"name": "e.p", "orientation": "landscape"}, {"coffee.png"}),
        ({"format": "", "orientation": "", "name": ""}, PNGS | JPEGS),
    ],
)
def test_filters_reach_the_catalog_and_the_grid_shows_only_matches(
    gallery: TestClient, catalog: Catalog, params: dict[str, str], expected: set[str]
) -> None:
    response = gallery.get("/", params=params)
    assert response.status_code == 200
    assert names(response) == expected
    assert sorted(cards(response)) == sorted(expected)
    sent = [r for r in catalog.requests if r.url.path in ("/v1/images", "/v1/images/count")]
    assert len(sent) == 2
    for request in sent:
        query = parse_qs(request.url.query.decode())
        assert {key: values for key, values in query.items() if key in params} == {
            key: [value] for key, value in params.items() if value
        }


def test_the_form_offers_every_catalog_filter_and_keeps_the_query(gallery: TestClient) -> None:
    response = gallery.get(
        "/",
        params={"min_width": "400", "format": "png", "orientation": "landscape", "name": "co"},
    )
    page = response.text
    for field in ("min_width", "max_width", "min_height", "max_height", "name"):
        assert f'name="{field}"' in page
    assert '<option value="png" selected>PNG</option>' in page
    assert '<option value="landscape" selected>landscape</option>' in page
    assert 'name="name" id="name-filter" maxlength="1000" value="co"' in page
    assert 'name="min_width" min="1" step="1" value="400"' in page
    formats = re.findall(
        r'<option value="([a-z]*)"', page.split('name="format"')[1].split("</select>")[0]
    )
    assert formats == ["", *FORMATS]
    assert names(response) == {"coffee.png"}


def test_the_gallery_knows_the_catalogs_formats_orientations_and_sorts() -> None:
    assert get_args(CatalogFormat) == FORMATS
    assert get_args(Orientation) == ORIENTATIONS
    assert set(SORTS) == set(SORT_KEYS)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"format": "jxl"}, "format"), ({"orientation": "diagonal"}, "orientation"),
     ({"name": "x" * 1001}, "name")],
)  # fmt: skip
def test_bad_filters_are_a_page_naming_the_field(
    gallery: TestClient, params: dict[str, str], field: str
) -> None:
    response = gallery.get("/", params=params)
    assert response.status_code == 422
    assert field in response.context["error"].message


def test_pages_keep_every_filter(backends: Backends) -> None:
    with gallery_with(backends, Catalog(backends), page_size=2) as client:
        first = client.get("/", params={"format": "png", "name": ".", "sort": "name"})
        assert [image.name for image in first.context["images"]] == ["astronaut.png", "camera.png"]
        next_url = first.context["next_url"]
        assert parse_qs(urlsplit(next_url).query).keys() == {"format", "name", "sort", "cursor"}
        second = client.get(next_url)
    assert [image.name for image in second.context["images"]] == ["chelsea.png", "coffee.png"]
    assert "4 images" in visible_text(second)


@pytest.mark.parametrize(
    ("params", "shown"),
    [({}, "8 images"), ({"format": "jpeg"}, "4 images"), ({"name": "rocket"}, "1 image")],
)
def test_the_count_says_how_many_match(
    gallery: TestClient, params: dict[str, str], shown: str
) -> None:
    response = gallery.get("/", params=params)
    assert response.context["count"] == shown
    assert f'<p class="result-count" id="result-count">{shown}</p>' in response.text


def test_a_count_that_stopped_at_its_limit_says_more_than(backends: Backends) -> None:
    capped = httpx.Response(200, json={"count": 10_000, "exact": False})
    with gallery_with(backends, Catalog(backends, count=capped)) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.context["count"] == "more than 10,000 images"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}}),
        httpx.Response(503, json={"error": {"code": "store_unavailable", "message": "down"}}),
        httpx.Response(200, json={"items": []}),
    ],
    ids=["older catalog", "failing", "not a count"],
)
def test_a_catalog_that_cannot_count_costs_only_the_count(
    backends: Backends, answer: httpx.Response
) -> None:
    with gallery_with(backends, Catalog(backends, count=answer)) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert names(response) == PNGS | JPEGS
    assert 'id="result-count"' not in response.text


def test_the_empty_state_names_the_narrowest_filter_and_links_without_each(
    gallery: TestClient,
) -> None:
    response = gallery.get("/", params={"min_width": "1000", "format": "png", "sort": "name"})
    assert response.status_code == 200
    assert names(response) == set()
    assert 'id="no-results"' in response.text
    loosen = {item.label: item for item in response.context["loosen"]}
    assert set(loosen) == {"width at least 1000 px", "format PNG"}
    assert [item.label for item in response.context["narrowest"]] == ["width at least 1000 px"]
    text = visible_text(response)
    assert "The narrowest is width at least 1000 px: without it, 4 images." in text
    assert "Without format PNG (2 images)" in text
    without_width = loosen["width at least 1000 px"].url
    assert parse_qs(urlsplit(without_width).query) == {"format": ["png"], "sort": ["name"]}
    assert f'href="{html.escape(without_width)}"' in response.text
    assert names(gallery.get(without_width)) == PNGS
    assert names(gallery.get(loosen["format PNG"].url)) == {"hubble_deep_field.jpg", "retina.jpg"}


def test_when_no_single_filter_helps_the_empty_state_offers_to_clear_them(
    gallery: TestClient,
) -> None:
    response = gallery.get("/", params={"format": "png", "orientation": "portrait", "name": "x"})
    assert response.context["narrowest"] == []
    assert [item.count.count for item in response.context["loosen"]] == [0, 0, 0]
    text = visible_text(response)
    assert "Loosening any one filter does not help" in text
    assert 'href="/?sort=-created" id="clear-filters"' in response.text


def test_a_name_alone_is_named_as_the_filter_to_loosen(gallery: TestClient) -> None:
    response = gallery.get("/", params={"name": "zebra"})
    text = visible_text(response)
    assert "The narrowest is name containing “zebra”: without it, 8 images." in text


def test_thumbnails_offer_a_2x_rendition_and_load_lazily(
    gallery: TestClient, ids: dict[str, str]
) -> None:
    page = gallery.get("/").text
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == len(SAMPLE_FILES)
    for image_id in ids.values():
        thumb = f"/images/{image_id}/thumb"
        tag = next(tag for tag in images if f'src="{thumb}"' in tag)
        assert f'srcset="{thumb} 1x, {thumb}?size=640 2x"' in tag
        assert 'loading="lazy"' in tag


@pytest.mark.parametrize(
    ("name", "size"),
    [("retina.jpg", (640, 640)), ("hubble_deep_field.jpg", (640, 558)), ("rocket.jpg", (640, 427))],
)
def test_size_640_thumbnails_are_640_on_their_longer_side(
    client: TestClient, ids: dict[str, str], name: str, size: tuple[int, int]
) -> None:
    url = f"/images/{ids[name]}/thumb"
    large = client.get(url, params={"size": "640"})
    assert large.status_code == 200
    assert large.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(large.content)) as image:
        assert image.size == size
    small = client.get(url, params={"size": "320"})
    with Image.open(io.BytesIO(small.content)) as image:
        assert max(image.size) == 320
    assert small.content == client.get(url).content  # 320 is the default
    assert large.headers["etag"] != small.headers["etag"]


@pytest.mark.parametrize("size", ["100", "480", "641", "0", "-320", "640.0", " 640", "large", ""])
def test_any_other_thumbnail_size_is_422(
    client: TestClient, ids: dict[str, str], size: str
) -> None:
    response = client.get(f"/images/{ids['rocket.jpg']}/thumb", params={"size": size})
    assert response.status_code == 422
    assert response.template.name == "error.html"
    assert "size: Input should be '320' or '640'" in response.context["error"].message


def test_the_gallery_links_its_own_script_and_style(gallery: TestClient) -> None:
    page = gallery.get("/").text
    assert '<link rel="stylesheet" href="/static/gallery.css">' in page
    assert '<script src="/static/gallery.js" defer></script>' in page
    assert "<style" not in page
    assert re.search(r"<script>(?!</script>)", page) is None
    for asset in ("/static/gallery.css", "/static/gallery.js"):
        assert gallery.get(asset).status_code == 200
