"""Uploading and deleting in Debian's chromium: the script's drop zone, the plain form, delete."""

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, page_in
from tests.stack import Stack

pytestmark = pytest.mark.browser


def photo(folder: Path, name: str, seed: int) -> Path:
    """A small JPEG of smooth ramps, its colour set by ``seed``: distinct bytes per seed."""
    y, x = np.mgrid[0:120, 0:160]
    pixels = np.stack(
        [x * 255 // 159, y * 255 // 119, np.full_like(x, (seed * 67) % 256)], axis=-1
    ).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    path = folder / name
    path.write_bytes(buffer.getvalue())
    return path


def catalog_ids(stack: Stack) -> set[str]:
    response = httpx.get(f"{stack.catalog.url}/v1/images", params={"limit": 200})
    return {item["id"] for item in response.json()["items"]}


@pytest.fixture(autouse=True)
def leave_only_the_samples(stack: Stack) -> Iterator[None]:
    """Delete what a test uploaded: the other browser tests count the samples."""
    before = catalog_ids(stack)
    yield
    for image_id in catalog_ids(stack) - before:
        httpx.delete(f"{stack.catalog.url}/v1/images/{image_id}")


@pytest.fixture
def plain_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page with JavaScript off, leaving a screenshot as the shared ``page`` fixture does."""
    with page_in(browser, request, java_script_enabled=False) as opened:
        yield opened


def snapshot(page: Page, moment: str) -> None:
    """A screenshot of a moment in the middle of a test, beside the one it leaves at its end."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"test_uploads-{moment}.png"), full_page=True)


def gallery_names(page: Page, stack: Stack) -> list[str]:
    page.goto(stack.gateway.url + "/")
    return page.locator("li.card .name").all_inner_texts()


def test_two_photos_upload_with_progress_then_one_is_deleted(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    first = photo(tmp_path, "upload-dawn.jpg", 1)
    second = photo(tmp_path, "upload-dusk.jpg", 2)
    page.goto(stack.gateway.url + "/upload")
    # With the script, the zone uploads as soon as files are chosen: no button to press.
    expect(page.locator("#dropzone .dropzone-submit")).to_be_hidden()
    page.set_input_files("#upload-files", [str(first), str(second)])

    items = page.locator("#upload-list .upload-item")
    expect(items).to_have_count(2)
    expect(page.locator("#upload-list .upload-item[data-status=added]")).to_have_count(2)
    progress = page.eval_on_selector_all(
        "#upload-list progress", "bars => bars.map(bar => [bar.value, bar.max])"
    )
    assert progress == [[1, 1], [1, 1]]
    assert sorted(items.locator(".upload-name").all_inner_texts()) == [
        "upload-dawn.jpg",
        "upload-dusk.jpg",
    ]
    expect(items.locator("a.upload-link")).to_have_count(2)
    expect(page.locator("#upload-summary")).to_contain_text("2 added")
    snapshot(page, "progress")

    names = gallery_names(page, stack)
    assert {"upload-dawn.jpg", "upload-dusk.jpg"} <= set(names)

    page.click("li.card >> text=upload-dawn.jpg")
    page.click("#delete-link")
    expect(page.locator("#confirm-delete h1")).to_have_text("Delete “upload-dawn.jpg”?")
    page.wait_for_function("() => document.querySelector('.confirm-thumb').naturalWidth > 0")
    snapshot(page, "confirm-delete")
    page.click("#confirm-delete-button")
    page.wait_for_url(re.compile(r".*/\?(.*&)?deleted=upload-dawn\.jpg"))
    expect(page.locator("#deleted-notice")).to_contain_text("upload-dawn.jpg")
    names = page.locator("li.card .name").all_inner_texts()
    assert "upload-dawn.jpg" not in names
    assert "upload-dusk.jpg" in names


def test_the_gallery_zone_reports_a_refusal_and_a_broken_connection(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.goto(stack.gateway.url + "/")
    page.set_input_files("#upload-files", [str(notes)])
    refused = page.locator("#upload-list .upload-item[data-status=refused]")
    expect(refused).to_contain_text("not an image")

    # The connection breaks: the file is reported, not lost, and can be sent again.
    page.route("**/upload", lambda route: route.abort("connectionreset"))
    page.set_input_files("#upload-files", [str(photo(tmp_path, "upload-retry.jpg", 3))])
    failed = page.locator("#upload-list .upload-item[data-status=failed]")
    expect(failed).to_contain_text("the file was not uploaded")
    page.unroute("**/upload")
    failed.locator(".upload-retry").click()
    added = page.locator("#upload-list .upload-item[data-status=added]")
    expect(added).to_contain_text("upload-retry.jpg")
    expect(page.locator("#upload-summary")).to_contain_text("1 added · 1 refused")


def test_the_form_works_without_javascript(plain_page: Page, stack: Stack, tmp_path: Path) -> None:
    plain_page.goto(stack.gateway.url + "/upload")
    plain_page.set_input_files("#upload-files", [str(photo(tmp_path, "upload-plain.jpg", 4))])
    plain_page.click("#dropzone .dropzone-submit")
    item = plain_page.locator("#upload-results .upload-item")
    expect(item).to_have_attribute("data-status", "added")
    expect(item.locator(".upload-name")).to_have_text("upload-plain.jpg")
    snapshot(plain_page, "without-javascript")
    item.locator("a.upload-link").click()
    expect(plain_page.locator("h1.image-title")).to_have_text("upload-plain.jpg")
    assert "upload-plain.jpg" in gallery_names(plain_page, stack)
