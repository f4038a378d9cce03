"""The image page's processing panel, pipeline editor, preview, histograms and outputs."""

import html
import io
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gateway.clients import Histogram
from gateway.config import Settings
from gateway.histogram import BOTTOM, TOP, histogram_svg
from tests.gateway.conftest import SAMPLES, Backends, gateway_client
from tests.gateway.test_page_defects import closed_port

SVG = "{http://www.w3.org/2000/svg}"


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and the labels around each control."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.label_depth = 0
        self.inside_label: list[bool] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {key: value or "" for key, value in attrs}))
        self.inside_label.append(self.label_depth > 0)
        if tag == "label":
            self.label_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """The attributes of each ``tag`` whose attributes include ``attrs``."""
        wanted = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k) == v for k, v in wanted.items())
        ]


def code_text(page: str, element_id: str) -> str:
    found = re.search(f'<code id="{element_id}">([^<]*)</code>', page)
    assert found is not None
    return html.unescape(found.group(1))


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url.replace("&amp;", "&")).query)


@pytest.fixture
def processor_down(backends: Backends) -> Iterator[TestClient]:
    settings = Settings(catalog_url="http://catalog", processor_url=closed_port())
    with gateway_client(settings, httpx.ASGITransport(app=backends.catalog)) as client:
        yield client


# --- the processing panel --------------------------------------------------------------------


def test_bounded_numbers_get_a_slider_beside_a_number_box_with_the_schema_s_bounds(
    client: TestClient, ids: dict[str, str]
) -> None:
    page = Elements(client.get(f"/images/{ids['rocket.jpg']}").text)
    (box,) = page.find("input", name="p.rotate.degrees")
    assert (box["type"], box["min"], box["max"], box["value"]) == ("number", "-360", "360", "90")
    (slider,) = page.find("input", id="p.rotate.degrees-slider")
    assert (slider["type"], slider["min"], slider["max"]) == ("range", "-360", "360")
    assert (slider["step"], slider["value"], slider["data-for"]) == (
        "0.1",
        "90",
        "p.rotate.degrees",
    )
    # The slider sends nothing (the box does) and stays hidden until the script pairs them.
    assert "name" not in slider and "hidden" in slider
    # An exclusive minimum: the box takes the schema's bound, the slider starts a step inside.
    (sigma,) = page.find("input", name="p.low_pass.sigma")
    (sigma_slider,) = page.find("input", id="p.low_pass.sigma-slider")
    assert (sigma["min"], sigma["max"], sigma["placeholder"]) == ("0", "100", "optional")
    assert (sigma_slider["min"], sigma_slider["max"], sigma_slider["step"]) == ("0.1", "100", "0.1")
    # Odd sizes only: both move in steps of two from the odd minimum.
    (size,) = page.find("input", name="p.median.size")
    (size_slider,) = page.find("input", id="p.median.size-slider")
    assert (size["step"], size_slider["step"], size_slider["min"]) == ("2", "2", "3")
    # Enums are selects, colours text with suggestions, unbounded numbers have no slider.
    assert page.find("select", name="p.low_pass.method")
    assert page.find("input", name="p.rotate.fill", type="text", list="p.rotate.fill-choices")
    assert page.find("input", id="p.low_pass.order-slider")  # an integer bounded 1..10
    assert not page.find("input", id="p.rotate.fill-slider")


def test_booleans_are_checkboxes_that_submit_false_when_unchecked(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["rocket.jpg"]
    page = client.get(f"/images/{image}", params={"ops": "rotate:degrees=30,expand=false"})
    expand = [
        (name, attrs)
        for name, attrs in Elements(page.text).tags
        if attrs.get("name") == "p.rotate.expand"
    ]
    # The hidden false comes first, so a checked box (sent after it) wins.
    assert [(attrs["type"], attrs["value"]) for _, attrs in expand] == [
        ("hidden", "false"),
        ("checkbox", "true"),
    ]
    assert "checked" not in expand[1][1]

    def submitted(*values: str) -> list[str]:
        params = [("op", "rotate"), ("p.rotate.degrees", "30")]
        params += [("p.rotate.expand", value) for value in values]
        response = client.get(f"/images/{image}", params=params)
        assert response.status_code == 303
        return parse_qs(urlsplit(response.headers["location"]).query)["ops"]

    assert submitted("false") == ["rotate:degrees=30,expand=false"]
    assert submitted("false", "true") == ["rotate:degrees=30,expand=true"]


def test_every_control_is_labelled_and_every_image_has_alt_text(
    client: TestClient, ids: dict[str, str]
) -> None:
    page = client.get(f"/images/{ids['rocket.jpg']}", params={"ops": "grayscale|invert"})
    parsed = Elements(page.text)
    labelled = {attrs["for"] for tag, attrs in parsed.tags if tag == "label" and "for" in attrs}
    controls = [
        (attrs, inside)
        for (tag, attrs), inside in zip(parsed.tags, parsed.inside_label, strict=True)
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden"
    ]
    assert len(controls) > 40
    for attrs, inside in controls:
        assert inside or attrs.get("id") in labelled or attrs.get("aria-label"), attrs
    for tag, attrs in parsed.tags:
        if tag == "img":
            assert attrs.get("alt"), attrs
        if tag == "a":
            assert attrs.get("href"), attrs
    # The strict CSP allows no inline style or script.
    assert " style=" not in page.text and "<style" not in page.text
    assert all("src" in attrs for tag, attrs in parsed.tags if tag == "script")
    assert parsed.find("link", rel="stylesheet", href="/static/image.css")
    assert parsed.find("script", src="/static/image.js")
    assert client.get("/static/image.js").status_code == 200
    assert client.get("/static/image.css").status_code == 200


# --- the pipeline's steps ------------------------------------------------------------------------


def test_each_step_moves_up_and_down_by_a_link(client: TestClient, ids: dict[str, str]) -> None:
    image = ids["rocket.jpg"]
    response = client.get(
        f"/images/{image}", params={"ops": "grayscale|invert|flip", "format": "png"}
    )
    moves = [
        tuple(None if url is None else query_of(url) for url in pair)
        for pair in response.context["moves"]
    ]
    up = [None if pair[0] is None else pair[0]["ops"] for pair in moves]
    down = [None if pair[1] is None else pair[1]["ops"] for pair in moves]
    assert up == [None, ["invert|grayscale|flip"], ["grayscale|flip|invert"]]
    assert down == [["invert|grayscale|flip"], ["grayscale|flip|invert"], None]
    assert all(query["format"] == ["png"] for pair in moves for query in pair if query)
    links = Elements(response.text)
    (move,) = links.find("a", class_="move-down", aria_label="Move step 1 (grayscale) down")
    moved = client.get(move["href"])
    assert moved.status_code == 200
    assert [step for step, _ in moved.context["steps"]] == ["invert", "grayscale", "flip"]
    assert moved.context["result"].pipeline == "invert|grayscale|flip:axis=horizontal"


# --- the outputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "media_type", "pillow"),
    [
        ("jpeg", "image/jpeg", "JPEG"),
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("avif", "image/avif", "AVIF"),
    ],
)
def test_the_result_downloads_in_every_format(
    client: TestClient, ids: dict[str, str], fmt: str, media_type: str, pillow: str
) -> None:
    page = client.get(f"/images/{ids['rocket.jpg']}", params={"ops": "rotate:degrees=90"})
    (link,) = Elements(page.text).find("a", id=f"download-{fmt}")
    assert "download" in link
    assert query_of(link["href"]) == {
        "ops": ["rotate:degrees=90"],
        "format": [fmt],
        "download": ["1"],
    }
    response = client.get(link["href"].replace("&amp;", "&"))
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"].startswith("attachment;")
    with Image.open(io.BytesIO(response.content)) as result:
        assert (result.format, result.size) == (pillow, (427, 640))


def test_the_curl_command_makes_the_same_result_with_the_processor(
    client: TestClient, ids: dict[str, str], backends: Backends
) -> None:
    page = client.get(
        f"/images/{ids['rocket.jpg']}",
        params={"ops": "rotate:degrees=90|grayscale", "format": "png"},
    )
    command = page.context["curl"]
    assert code_text(page.text, "curl-command") == command
    words = shlex.split(command)
    assert words[:5] == ["curl", "-X", "POST", "--data-binary", "@rocket.jpg"]
    assert words[5:7] == ["-o", "result.png"]
    url = urlsplit(words[7])
    assert f"{url.scheme}://{url.netloc}" == "http://processor"  # the gateway's setting
    assert url.path == "/v1/process"
    query = parse_qs(url.query)
    assert query == {"ops": [page.context["result"].pipeline], "format": ["png"]}
    # What the command would fetch is what the page shows.
    # No lifespan of its own: the module's processor app is already running.
    processor = TestClient(backends.processor)
    made = processor.post(url.path, params=query, content=(SAMPLES / "rocket.jpg").read_bytes())
    shown = client.get(page.context["result_url"])
    assert made.content == shown.content
    assert code_text(page.text, "canonical-pipeline") == page.context["result"].pipeline


def test_the_curl_command_names_the_key_without_showing_it(
    backends: Backends, ids: dict[str, str]
) -> None:
    settings = Settings(
        catalog_url="http://catalog", processor_url="http://127.0.0.1:8002/", processor_key="s3cret"
    )
    with gateway_client(
        settings,
        httpx.ASGITransport(app=backends.catalog),
        httpx.ASGITransport(app=backends.processor),
    ) as keyed:
        page = keyed.get(f"/images/{ids['rocket.jpg']}", params={"ops": "invert"})
    words = shlex.split(page.context["curl"])
    assert words[5:7] == ["-H", "Authorization: Bearer $PROCESSOR_KEY"]
    assert words[7:9] == ["-o", "result.jpg"]  # automatic format: the result's, a JPEG
    assert words[9].startswith("http://127.0.0.1:8002/v1/process?ops=invert")
    assert "s3cret" not in page.text


# --- the histograms ------------------------------------------------------------------------------


def test_histograms_are_svg_polylines_per_channel_cached_like_renders(
    client: TestClient, ids: dict[str, str]
) -> None:
    image = ids["rocket.jpg"]
    page = Elements(client.get(f"/images/{image}", params={"ops": "grayscale"}).text)
    (original,) = page.find("img", id="original-histogram")
    (result,) = page.find("img", id="result-histogram")
    assert original["src"] == f"/images/{image}/histogram"
    assert query_of(result["src"]) == {"ops": ["grayscale"]}

    colour = client.get(original["src"])
    assert colour.status_code == 200
    assert colour.headers["content-type"] == "image/svg+xml"
    assert colour.headers["cache-control"] == "public, max-age=3600"
    svg = ET.fromstring(colour.content)
    assert svg.get("viewBox") == "0 0 320 160"
    assert "Histogram of the original" in (svg.findtext(f"{SVG}title") or "")
    lines = {line.get("class"): line for line in svg.iter(f"{SVG}polyline") if line.get("class")}
    assert set(lines) == {"channel-r", "channel-g", "channel-b"}
    tops = []
    for line in lines.values():
        points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
        assert len(points) == 256
        assert all(TOP <= y <= BOTTOM for _, y in points)
        tops.append(min(y for _, y in points))
    assert min(tops) == TOP  # scaled to the largest count

    grey = client.get(result["src"].replace("&amp;", "&"))
    classes = {line.get("class") for line in ET.fromstring(grey.content).iter(f"{SVG}polyline")}
    assert "channel-l" in classes and "channel-r" not in classes

    again = client.get(original["src"], headers={"If-None-Match": colour.headers["etag"]})
    assert again.status_code == 304
    unknown = client.get(f"/images/{image}/histogram", params={"ops": "sepia"})
    assert unknown.status_code == 404


def test_the_histogram_drawing_scales_each_count_to_the_peak() -> None:
    counts = [0] * 256
    counts[0], counts[255] = 10, 5
    svg = ET.fromstring(
        histogram_svg(Histogram(channels=["l"], counts=[counts], width=3, height=5), "T")
    )
    line = next(line for line in svg.iter(f"{SVG}polyline") if line.get("class") == "channel-l")
    points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    assert points[0][1] == TOP
    assert points[255][1] == (TOP + BOTTOM) / 2
    assert {y for _, y in points[1:255]} == {BOTTOM}
    assert svg.findtext(f"{SVG}title") == "T: grey levels, 0 to 255"


def test_without_the_processor_a_histogram_is_the_placeholder_picture(
    processor_down: TestClient, ids: dict[str, str]
) -> None:
    url = f"/images/{ids['rocket.jpg']}/histogram"
    as_img = processor_down.get(url, headers={"Accept": "image/*"})
    assert as_img.status_code == 503
    assert as_img.headers["content-type"] == "image/svg+xml"
    assert processor_down.get(url, headers={"Accept": "text/html"}).status_code == 503


# --- the preview ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ops", "shown", "size"),
    [
        ("retina.jpg", "grayscale", "grayscale|resize:width=640", (640, 640)),
        ("rocket.jpg", "grayscale", "grayscale", (640, 427)),
        # A narrow original widened by the pipeline is shrunk after all.
        ("rocket.jpg", "rotate:degrees=30", "rotate:degrees=30|resize:width=640", None),
        ("chelsea.png", "", "", (451, 300)),
    ],
)
def test_the_preview_is_at_most_640_pixels_wide(
    client: TestClient, ids: dict[str, str], name: str, ops: str, shown: str, size: object
) -> None:
    response = client.get(f"/images/{ids[name]}/preview", params={"ops": ops, "format": "png"})
    assert response.status_code == 200
    assert response.headers["x-pipeline"] == shown
    assert response.headers["etag"]
    with Image.open(io.BytesIO(response.content)) as preview:
        assert preview.format == "PNG"
        assert preview.width <= 640
        if size is not None:
            assert preview.size == size


def test_a_refused_preview_is_the_error_page_naming_the_field(
    client: TestClient, ids: dict[str, str]
) -> None:
    response = client.get(
        f"/images/{ids['rocket.jpg']}/preview", params={"ops": "low_pass:sigma=1000"}
    )
    assert response.status_code == 422
    assert "low_pass.sigma" in response.text


def test_the_page_offers_the_comparison_and_copy_buttons_only_to_scripts(
    client: TestClient, ids: dict[str, str]
) -> None:
    page = client.get(f"/images/{ids['rocket.jpg']}", params={"ops": "invert"})
    parsed = Elements(page.text)
    (compare,) = parsed.find("figure", id="compare")
    assert "hidden" in compare
    (compare_range,) = parsed.find("input", id="compare-range")
    assert (compare_range["type"], compare_range["min"], compare_range["max"]) == (
        "range",
        "0",
        "100",
    )
    buttons = parsed.find("button", class_="copy")
    assert {button["data-copy"] for button in buttons} == {"canonical-pipeline", "curl-command"}
    assert all("hidden" in button for button in buttons)
    (panes,) = parsed.find("div", id="panes")
    assert panes["data-preview-url"] == f"/images/{ids['rocket.jpg']}/preview"
    # No result yet: nothing to compare, download or copy.
    bare = Elements(client.get(f"/images/{ids['rocket.jpg']}").text)
    assert not bare.find("figure", id="compare")
    assert not bare.find("section", id="outputs")


def test_decoded_original_histogram_matches_the_processor_counts(
    client: TestClient, ids: dict[str, str]
) -> None:
    # The tallest level of the original, read back from the drawing, is the photo's own.
    svg = ET.fromstring(client.get(f"/images/{ids['coffee.png']}/histogram").content)
    with Image.open(SAMPLES / "coffee.png") as photo:
        red = np.asarray(photo.convert("RGB"))[:, :, 0]
    peak_level = int(np.argmax(np.bincount(red.ravel(), minlength=256)))
    line = next(line for line in svg.iter(f"{SVG}polyline") if line.get("class") == "channel-r")
    points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    assert min(range(256), key=lambda level: points[level][1]) == peak_level
