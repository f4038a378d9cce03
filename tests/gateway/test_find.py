"""Finding photos: date, camera, colour and location filters, similar photos, duplicates."""

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import get_args
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.config import Settings as CatalogSettings
from catalog.main import create_app as create_catalog
from catalog.models import COLOUR_CLASSES, SORT_KEYS
from gateway.clients import DuplicateGroup, ImageRecord
from gateway.config import Settings
from gateway.routes import SORTS, Colour, members, swatch_uri, taken_text
from processor.main import create_app as create_processor
from tests.gateway.conftest import SAMPLES, gateway_client
from tests.gateway.photos import Gps, exif_photo, reencoded

CANON = "Canon EOS 5D Mark IV"
IPHONE = "Apple iPhone 12 Pro"


def photos() -> dict[str, bytes]:
    """A red Canon photo with GPS, a blue iPhone photo with an offset, an undated green one,
    and a sample with a smaller re-encoded copy of it."""
    chelsea = (SAMPLES / "chelsea.png").read_bytes()
    return {
        "red-canon.jpg": exif_photo(
            (220, 30, 30),
            seed=1,
            taken="2021:06:15 10:00:00",
            make="Canon",
            model=CANON,
            lens="EF24-70mm f/2.8L II USM",
            gps=Gps(51.5, -0.125),
        ),
        "blue-iphone.jpg": exif_photo(
            (30, 40, 220),
            seed=2,
            taken="2023:01:02 08:30:00",
            offset="+02:00",
            make="Apple",
            model="iPhone 12 Pro",
        ),
        "green-undated.jpg": exif_photo((40, 200, 50), seed=3, size=(200, 200)),
        "chelsea.png": chelsea,
        "chelsea-small.jpg": reencoded(chelsea),
    }


@dataclass(frozen=True)
class Found:
    """The catalog and processor apps, and each photo's id in the catalog."""

    catalog: FastAPI
    processor: FastAPI
    ids: dict[str, str]


def catalog_with(directory: Path, files: dict[str, bytes]) -> Iterator[Found]:
    """A catalog holding ``files`` and a processor, their lifespans running."""
    catalog = create_catalog(
        settings=CatalogSettings(
            store=f"sqlite:///{directory / 'catalog.db'}", blobs=directory / "blobs"
        )
    )
    processor = create_processor()
    with TestClient(catalog) as catalog_client, TestClient(processor):
        ids = {}
        for name, data in files.items():
            response = catalog_client.post("/v1/images", params={"name": name}, content=data)
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        yield Found(catalog, processor, ids)


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Found]:
    yield from catalog_with(tmp_path_factory.mktemp("find"), photos())


class Catalog(httpx.AsyncBaseTransport):
    """The real catalog app, recording each request; paths in ``broken`` answer 503."""

    def __init__(self, app: FastAPI, broken: tuple[str, ...] = ()) -> None:
        self.app = httpx.ASGITransport(app=app)
        self.broken = broken
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, then answer it (or fail, for a broken path)."""
        self.paths.append(request.url.path)
        if any(request.url.path.endswith(path) for path in self.broken):
            return httpx.Response(503, json={"error": {"code": "down", "message": "down"}})
        return await self.app.handle_async_request(request)


def gateway(found: Found, catalog: Catalog, **settings: object) -> TestClient:
    """A gateway in front of ``catalog`` and the real processor."""
    return gateway_client(
        Settings(catalog_url="http://catalog", processor_url="http://processor", **settings),  # type: ignore[arg-type]
        catalog,
        httpx.ASGITransport(app=found.processor),
    )


@pytest.fixture
def catalog(found: Found) -> Catalog:
    return Catalog(found.catalog)


@pytest.fixture
def client(found: Found, catalog: Catalog) -> Iterator[TestClient]:
    with gateway(found, catalog) as test_client:
        yield test_client


def names(response: httpx.Response) -> list[str]:
    """The names of the gallery's cards, in order."""
    return [
        html.unescape(n) for n in re.findall(r'<span class="name">([^<]*)</span>', response.text)
    ]


def count(response: httpx.Response) -> str:
    """The result count above the grid."""
    match = re.search(r'id="result-count">([^<]*)<', response.text)
    assert match, response.text
    return match.group(1)


def test_the_gallery_offers_every_catalog_colour_and_the_taken_sorts() -> None:
    assert get_args(Colour) == COLOUR_CLASSES
    assert set(SORTS) <= set(SORT_KEYS)
    assert {"taken", "-taken"} <= set(SORTS)


def test_a_colour_swatch_finds_only_photos_of_that_colour(client: TestClient) -> None:
    page = client.get("/", params={"colour": "red"})
    assert page.status_code == 200
    assert names(page) == ["red-canon.jpg"]
    assert count(page) == "1 image"
    # Every class is a labelled radio button, the chosen one checked.
    radios = re.findall(r'<input type="radio" name="colour" value="([a-z]*)"[^>]*>', page.text)
    assert radios == ["", *COLOUR_CLASSES]
    assert re.search(r'value="red" class="swatch-input" checked', page.text)
    assert '<span class="visually-hidden">red</span>' in page.text
    assert names(client.get("/", params={"colour": "blue"})) == ["blue-iphone.jpg"]


def test_a_date_range_finds_photos_taken_within_it_whole_days_included(
    client: TestClient,
) -> None:
    # The red photo was taken at 10:00 on 2021-06-15: a range ending that day holds it.
    page = client.get("/", params={"taken_after": "2021-06-15", "taken_before": "2021-06-15"})
    assert names(page) == ["red-canon.jpg"]
    assert 'name="taken_after" value="2021-06-15"' in page.text
    assert names(client.get("/", params={"taken_after": "2022-01-01"})) == ["blue-iphone.jpg"]
    both = client.get("/", params={"taken_before": "2030-01-01"})
    assert sorted(names(both)) == ["blue-iphone.jpg", "red-canon.jpg"]  # undated never match


def test_the_camera_select_lists_the_catalogs_cameras_and_filters_by_one(
    client: TestClient,
) -> None:
    page = client.get("/")
    select = re.search(r'<select name="camera" id="camera-filter">(.*?)</select>', page.text, re.S)
    assert select, page.text
    options = [html.unescape(o) for o in re.findall(r'<option value="([^"]*)"', select.group(1))]
    assert options[0] == "" and set(options[1:]) == {CANON, IPHONE}
    chosen = client.get("/", params={"camera": IPHONE})
    assert names(chosen) == ["blue-iphone.jpg"]
    assert f'<option value="{IPHONE}" selected>' in chosen.text


def test_with_location_finds_only_photos_with_gps(client: TestClient) -> None:
    page = client.get("/", params={"has_location": "true"})
    assert names(page) == ["red-canon.jpg"]
    assert re.search(r'name="has_location" value="true" checked', page.text)


def test_sort_by_date_taken_puts_dated_photos_in_order_both_ways(client: TestClient) -> None:
    dated = {"red-canon.jpg", "blue-iphone.jpg"}
    earliest = [n for n in names(client.get("/", params={"sort": "taken"})) if n in dated]
    latest = [n for n in names(client.get("/", params={"sort": "-taken"})) if n in dated]
    assert earliest == ["red-canon.jpg", "blue-iphone.jpg"]
    assert latest == ["blue-iphone.jpg", "red-canon.jpg"]


def test_paging_and_the_gallery_link_keep_the_new_filters(found: Found, catalog: Catalog) -> None:
    query = {"taken_after": "2020-01-01", "has_location": "false", "sort": "taken"}
    with gateway(found, catalog, page_size=1) as small:
        first = small.get("/", params={"taken_after": "2020-01-01", "sort": "taken"})
        assert names(first) == ["red-canon.jpg"]
        assert count(first) == "2 images"
        link = re.search(r'<a href="([^"]*)" rel="next">', first.text)
        assert link, first.text
        kept = dict(parse_qsl(urlsplit(html.unescape(link.group(1))).query))
        assert kept["taken_after"] == "2020-01-01" and kept["sort"] == "taken"
        assert names(small.get(html.unescape(link.group(1)))) == ["blue-iphone.jpg"]
        small.get("/", params=query)
        nav = re.search(r'<a href="([^"]*)" id="nav-gallery">', small.get("/duplicates").text)
        assert nav
        assert dict(parse_qsl(urlsplit(html.unescape(nav.group(1))).query)) == query


def test_an_empty_gallery_names_each_new_filter_to_loosen(client: TestClient) -> None:
    page = client.get(
        "/",
        params={"colour": "red", "camera": IPHONE, "taken_after": "2021-01-01"},
    )
    assert names(page) == []
    loosen = dict(
        (html.unescape(label), html.unescape(url))
        for url, label in re.findall(r'<a href="([^"]*)" data-filter="([^"]*)">', page.text)
    )
    assert set(loosen) == {"colour red", f"camera {IPHONE}", "taken on or after 2021-01-01"}
    assert "colour=" not in loosen["colour red"]
    assert names(client.get(loosen["colour red"])) == ["blue-iphone.jpg"]
    assert names(client.get(loosen[f"camera {IPHONE}"])) == ["red-canon.jpg"]
    located = client.get("/", params={"has_location": "true", "colour": "blue"})
    assert 'data-filter="with a location"' in located.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("colour", "purple"), ("taken_after", "last week"), ("has_location", "maybe")],
)
def test_a_bad_new_filter_is_refused_naming_it(client: TestClient, field: str, value: str) -> None:
    page = client.get("/", params={field: value})
    assert page.status_code == 422
    assert field in page.text


def test_the_camera_list_is_cached_and_the_gallery_does_without_it(found: Found) -> None:
    catalog = Catalog(found.catalog)
    with gateway(found, catalog) as client:
        client.get("/")
        client.get("/", params={"colour": "red"})
    assert catalog.paths.count("/v1/cameras") == 1
    broken = Catalog(found.catalog, broken=("/v1/cameras",))
    with gateway(found, broken) as client:
        page = client.get("/", params={"camera": CANON})
        assert page.status_code == 200
        assert 'id="camera-filter"' not in page.text
        # The chosen camera still filters, and the form still carries it.
        assert names(page) == ["red-canon.jpg"]
        assert f'<input type="hidden" name="camera" value="{CANON}">' in page.text


def metadata(response: httpx.Response) -> dict[str, str]:
    """The image page's metadata list, term to text (tags removed)."""
    block = re.search(r'<dl id="metadata">(.*?)</dl>', response.text, re.S)
    assert block, response.text
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", block.group(1), re.S)
    return {t: html.unescape(re.sub(r"<[^>]+>", "", d)).strip() for t, d in pairs}


def test_the_image_page_shows_camera_lens_date_location_and_colour(
    client: TestClient, found: Found
) -> None:
    red = metadata(client.get(f"/images/{found.ids['red-canon.jpg']}"))
    assert red["Camera"] == CANON
    assert red["Lens"] == "EF24-70mm f/2.8L II USM"
    assert red["Taken"] == "2021-06-15 10:00:00"
    # Coordinates are not kept by default: the page says only that there was a position.
    assert red["Location"] == "recorded (coordinates not kept)"
    assert red["Dominant colour"].endswith("(red)")
    blue = metadata(client.get(f"/images/{found.ids['blue-iphone.jpg']}"))
    assert blue["Camera"] == IPHONE
    assert blue["Taken"] == "2023-01-02 08:30:00 UTC+02:00"
    assert blue["Location"] == "none"
    green = metadata(client.get(f"/images/{found.ids['green-undated.jpg']}"))
    assert "Camera" not in green and "Taken" not in green


def test_the_image_page_shows_similar_photos(client: TestClient, found: Found) -> None:
    page = client.get(f"/images/{found.ids['chelsea.png']}")
    strip = re.search(r'<section class="similar" id="similar".*?</section>', page.text, re.S)
    assert strip, "no similar photos on the page"
    assert f'href="/images/{found.ids["chelsea-small.jpg"]}"' in strip.group(0)
    assert f'/images/{found.ids["chelsea.png"]}"' not in strip.group(0)
    # A photo like no other has no strip at all.
    assert 'id="similar"' not in client.get(f"/images/{found.ids['red-canon.jpg']}").text


def test_the_image_page_renders_when_similar_photos_cannot_be_found(found: Found) -> None:
    broken = Catalog(found.catalog, broken=("/similar",))
    with gateway(found, broken) as client:
        page = client.get(f"/images/{found.ids['chelsea.png']}")
    assert page.status_code == 200
    assert 'id="similar"' not in page.text
    assert any(path.endswith("/similar") for path in broken.paths)


def test_the_duplicates_page_shows_a_group_side_by_side_the_largest_marked(
    client: TestClient, found: Found
) -> None:
    page = client.get("/duplicates")
    assert page.status_code == 200
    groups = re.findall(r'<li class="duplicate-group".*?</ul>\s*</li>', page.text, re.S)
    assert len(groups) == 1, page.text
    cards = re.findall(
        r'<li class="duplicate( largest)?" data-id="([0-9a-f]+)">(.*?)</li>', groups[0], re.S
    )
    by_id = {image_id: (bool(largest), body) for largest, image_id, body in cards}
    big, small = found.ids["chelsea.png"], found.ids["chelsea-small.jpg"]
    assert set(by_id) == {big, small}
    assert by_id[big][0] and not by_id[small][0]
    assert "largest" in by_id[big][1] and "largest" not in by_id[small][1]
    assert "451 × 300 px · PNG" in by_id[big][1]
    assert "226 × 150 px · JPEG" in by_id[small][1]
    assert re.search(r"[\d,]+ bytes", by_id[small][1])
    assert f'href="/images/{small}/delete?back=duplicates"' in by_id[small][1]
    assert "/delete" not in by_id[big][1]
    assert 'id="nav-duplicates"' in client.get("/").text


def test_deleting_a_duplicate_confirms_then_returns_to_the_duplicates_page(
    tmp_path: Path,
) -> None:
    chelsea = (SAMPLES / "chelsea.png").read_bytes()
    files = {"chelsea.png": chelsea, "chelsea-small.jpg": reencoded(chelsea)}
    for found in catalog_with(tmp_path, files):
        with gateway(found, Catalog(found.catalog)) as client:
            small = found.ids["chelsea-small.jpg"]
            confirm = client.get(f"/images/{small}/delete", params={"back": "duplicates"})
            assert f'action="/images/{small}/delete?back=duplicates"' in confirm.text
            done = client.post(
                f"/images/{small}/delete?back=duplicates",
                headers={"Origin": str(client.base_url)},
            )
            assert done.status_code == 303
            assert done.headers["location"].startswith("/duplicates?deleted=chelsea-small.jpg")
            after = client.get(done.headers["location"])
            assert "“chelsea-small.jpg” was deleted." in after.text
            assert 'id="no-duplicates"' in after.text


def record(image_id: str, pixels: tuple[int, int], size: int) -> ImageRecord:
    """A record of ``pixels`` (width, height) and ``size`` bytes."""
    width, height = pixels
    return ImageRecord.model_validate(
        {
            "id": image_id, "name": f"{image_id}.jpg", "sha256": image_id * 8, "format": "jpeg",
            "mode": "RGB", "width": width, "height": height, "pixels": width * height,
            "aspect": width / height, "orientation": "landscape", "bytes": size,
            "exif_orientation": 1, "created": "2024-01-01T00:00:00Z",
        }
    )  # fmt: skip


def test_the_largest_has_the_most_pixels_then_the_most_bytes() -> None:
    group = DuplicateGroup(
        group="a",
        images=[
            record("a", (100, 50), 900),
            record("b", (100, 60), 10),
            record("c", (60, 100), 20),
        ],
    )
    assert [m.largest for m in members(group)] == [False, False, True]


def test_the_date_taken_is_shown_as_stored_with_its_offset() -> None:
    assert taken_text("2024-05-01T14:03:22+02:00") == "2024-05-01 14:03:22 UTC+02:00"
    assert taken_text("2024-05-01T14:03:22") == "2024-05-01 14:03:22"
    assert taken_text("2024-05-01T14:03:22Z") == "2024-05-01 14:03:22 UTC"


def test_a_swatch_is_drawn_only_for_a_hex_colour() -> None:
    assert swatch_uri("#FF0080") == (
        "data:image/svg+xml,%3Csvg%20xmlns%3D%27http%3A//www.w3.org/2000/svg%27%20width%3D%2716%27"
        "%20height%3D%2716%27%3E%3Crect%20width%3D%2716%27%20height%3D%2716%27%20fill%3D%27"
        "%23ff0080%27/%3E%3C/svg%3E"
    )
    assert swatch_uri("red'/><script>") is None
    assert swatch_uri(None) is None
