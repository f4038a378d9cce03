"""The whole flow across three real uvicorn processes on loopback."""

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from processor.codec import decode
from tests.stack import SAMPLES, Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e")) as running:
        yield running


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_query_open_rotate_matches_np_rot90(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as gateway:
        # Query by dimensions through the catalog's API: exactly the two samples 600-700 px wide.
        found = httpx.get(
            f"{stack.catalog.url}/v1/images",
            params={"min_width": 600, "max_width": 700, "sort": "width"},
        ).json()["items"]
        assert [(item["name"], item["width"], item["height"]) for item in found] == [
            ("coffee.png", 600, 400),
            ("rocket.jpg", 640, 427),
        ]
        rocket = found[1]

        # The same query through the gateway's form shows those two and no other.
        page = gateway.get("/", params={"min_width": "600", "max_width": "700", "min_height": ""})
        assert page.status_code == 200
        assert page.text.count('class="card"') == 2
        assert f'href="/images/{rocket["id"]}"' in page.text

        # Open the image; its page links the original and the processing form.
        view = gateway.get(f"/images/{rocket['id']}")
        assert view.status_code == 200
        assert "640 × 427" in view.text
        assert 'data-op="rotate"' in view.text

        # Submit the form: rotate by 90 with PNG output, then load the result it points to.
        submitted = gateway.get(
            f"/images/{rocket['id']}",
            params={"op": "rotate", "p.rotate.degrees": "90", "format": "png"},
        )
        assert submitted.status_code == 303
        result_page = gateway.get(submitted.headers["location"])
        assert result_page.status_code == 200
        assert 'id="result-image"' in result_page.text
        rendered = gateway.get(
            f"/images/{rocket['id']}/render",
            params={"ops": "rotate:degrees=90", "format": "png"},
        )
        assert rendered.status_code == 200
        assert rendered.headers["content-type"] == "image/png"
        # The processor turns rocket.jpg's Adobe RGB into sRGB as it decodes; so does this.
        original = decode((SAMPLES / "rocket.jpg").read_bytes(), max_pixels=10**8).pixels
        expected = np.rot90(original)
        assert np.array_equal(pixels(rendered.content), expected)


def test_thumbnails_and_originals_are_served_by_url(stack: Stack) -> None:
    items = httpx.get(f"{stack.catalog.url}/v1/images", params={"limit": 200}).json()["items"]
    assert len(items) == len(list(SAMPLES.glob("*.[jp][pn]g")))
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as gateway:
        for item in items:
            thumb = gateway.get(f"/images/{item['id']}/thumb")
            assert thumb.status_code == 200, thumb.text
            with Image.open(io.BytesIO(thumb.content)) as image:
                assert max(image.size) == 320
            original = gateway.get(f"/images/{item['id']}/original")
            assert original.content == (SAMPLES / item["name"]).read_bytes()


def test_processor_down_gives_503_then_recovers(stack: Stack) -> None:
    rocket = httpx.get(
        f"{stack.catalog.url}/v1/images", params={"min_width": 640, "max_width": 640}
    ).json()["items"][0]
    url = f"{stack.gateway.url}/images/{rocket['id']}/render"
    params = {"ops": "grayscale|low_pass:sigma=1.5", "format": "jpeg"}
    stack.processor.stop()
    try:
        down = httpx.get(url, params=params, timeout=30)
        assert down.status_code == 503
        assert "processor" in down.text
        assert down.headers["retry-after"] == "1"
        assert down.headers["content-type"].startswith("text/html")
    finally:
        stack.processor.start()
    up = httpx.get(url, params=params, timeout=30)
    assert up.status_code == 200
    assert up.headers["content-type"] == "image/jpeg"


def test_catalog_down_gives_503_page(stack: Stack, tmp_path: Path) -> None:
    stack.catalog.stop()
    try:
        down = httpx.get(f"{stack.gateway.url}/", timeout=30)
        assert down.status_code == 503
        assert "catalog" in down.text
    finally:
        stack.catalog.start()
    assert httpx.get(f"{stack.gateway.url}/", timeout=30).status_code == 200
