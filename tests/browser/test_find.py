"""Finding photos in chromium: colour swatches, a date range, similar photos, duplicates."""

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import ARTIFACTS, page_in
from tests.gateway.conftest import SAMPLES
from tests.gateway.photos import Gps, exif_photo, reencoded
from tests.stack import Stack, running_stack

pytestmark = pytest.mark.browser

PHONE = ViewportSize(width=390, height=844)
CANON = "Canon EOS 5D Mark IV"


@dataclass(frozen=True)
class Finding:
    """A stack of its own (the other browser tests count the samples) and the uploaded ids."""

    stack: Stack
    ids: dict[str, str]


@pytest.fixture(scope="module")
def finding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finding]:
    """The three services with the samples, two photos with EXIF and two re-encoded copies."""
    red = exif_photo(
        (220, 30, 30),
        seed=1,
        taken="2021:06:15 10:00:00",
        make="Canon",
        model=CANON,
        gps=Gps(48.85, 2.35),
    )
    files = {
        "red-canon.jpg": red,
        "red-canon-copy.jpg": reencoded(red, scale=0.75),
        "blue-iphone.jpg": exif_photo(
            (30, 40, 220),
            seed=2,
            taken="2023:01:02 08:30:00",
            offset="+02:00",
            make="Apple",
            model="iPhone 12 Pro",
        ),
        "chelsea-copy.jpg": reencoded((SAMPLES / "chelsea.png").read_bytes()),
    }
    with running_stack(tmp_path_factory.mktemp("find")) as stack:
        ids = {}
        for name, data in files.items():
            answer = httpx.post(
                f"{stack.catalog.url}/v1/images", params={"name": name}, content=data, timeout=30
            )
            assert answer.status_code == 201, answer.text
            ids[name] = answer.json()["id"]
        listed = httpx.get(f"{stack.catalog.url}/v1/images", params={"name": "chelsea.png"})
        ids["chelsea.png"] = listed.json()["items"][0]["id"]
        yield Finding(stack, ids)


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page on a phone's screen, leaving a screenshot as ``page`` does."""
    with page_in(browser, request, viewport=PHONE, device_scale_factor=3, is_mobile=True) as opened:
        yield opened


def catalog_names(finding: Finding, **filters: str) -> set[str]:
    """The names the catalog itself finds for these filters."""
    answer = httpx.get(f"{finding.stack.catalog.url}/v1/images", params={**filters, "limit": "200"})
    assert answer.status_code == 200, answer.text
    return {item["name"] for item in answer.json()["items"]}


def card_names(page: Page) -> set[str]:
    """The names on the gallery's cards."""
    return set(page.locator("li.card .name").all_inner_texts())


def test_a_colour_swatch_then_a_date_range_show_only_matching_photos(
    page: Page, finding: Finding
) -> None:
    page.goto(finding.stack.gateway.url + "/")
    # The swatch is a labelled radio button: reachable by its name, as a screen reader finds it.
    page.get_by_role("radio", name="red", exact=True).check()
    page.click("#query-form button[type=submit]")
    page.wait_for_url("**/?*colour=red*")
    reds = catalog_names(finding, colour="red")
    assert "red-canon.jpg" in reds and "blue-iphone.jpg" not in reds
    assert card_names(page) == reds
    expect(page.get_by_role("radio", name="red", exact=True)).to_be_checked()

    page.goto(finding.stack.gateway.url + "/")
    page.fill("#taken-after", "2022-12-01")
    page.fill("#taken-before", "2023-01-31")
    page.click("#query-form button[type=submit]")
    page.wait_for_url("**/?*taken_after=2022-12-01*")
    assert card_names(page) == {"blue-iphone.jpg"}
    expect(page.locator("#result-count")).to_have_text("1 image")


def test_the_duplicates_page_shows_a_copy_beside_its_original_marked_largest(
    page: Page, finding: Finding
) -> None:
    page.goto(finding.stack.gateway.url + "/")
    page.click("#nav-duplicates")
    page.wait_for_url("**/duplicates")
    original = page.locator(f"li.duplicate[data-id='{finding.ids['chelsea.png']}']")
    copy = page.locator(f"li.duplicate[data-id='{finding.ids['chelsea-copy.jpg']}']")
    expect(original.locator(".largest-mark")).to_have_text("largest")
    expect(copy.locator(".largest-mark")).to_have_count(0)
    expect(copy.locator(".dims")).to_contain_text("226 × 150 px")
    left, right = original.bounding_box(), copy.bounding_box()
    assert left and right
    # Side by side: one row, the original (largest first) on the left.
    assert abs(left["y"] - right["y"]) < 1 and left["x"] < right["x"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "test_find-duplicates-page.png"), full_page=True)
    copy.locator(".delete-duplicate").click()
    page.wait_for_url("**/delete?back=duplicates")
    expect(page.locator("#confirm-delete h1")).to_contain_text("chelsea-copy.jpg")


def test_the_image_page_shows_camera_date_and_a_similar_photo(page: Page, finding: Finding) -> None:
    page.goto(f"{finding.stack.gateway.url}/images/{finding.ids['red-canon.jpg']}")
    expect(page.locator("#meta-camera")).to_have_text(CANON)
    expect(page.locator("#meta-taken")).to_have_text("2021-06-15 10:00:00")
    strip = page.locator("#similar")
    expect(strip.get_by_role("heading")).to_have_text("Similar photos")
    similar = strip.locator(f"a[href='/images/{finding.ids['red-canon-copy.jpg']}']")
    expect(similar).to_be_visible()
    # The thumbnail really loaded.
    expect(similar.locator("img")).to_have_js_property("complete", True)
    assert similar.locator("img").evaluate("img => img.naturalWidth") > 0
    similar.scroll_into_view_if_needed()


@pytest.mark.parametrize("path", ["/duplicates", "/?colour=red&has_location=true"])
def test_a_phone_shows_the_new_pages_without_sideways_scrolling(
    phone: Page, finding: Finding, path: str
) -> None:
    phone.goto(finding.stack.gateway.url + path)
    widths = phone.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


def test_the_colour_swatches_work_from_the_keyboard(page: Page, finding: Finding) -> None:
    page.goto(finding.stack.gateway.url + "/")
    page.get_by_label("Name contains").focus()
    for _ in range(20):  # bounded: the colour group comes a few tabs after the name
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "colour":
            break
    assert page.evaluate("document.activeElement.value") == ""  # "any", the checked one
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="red", exact=True)).to_be_checked()
    chip = page.locator(".swatch-red .swatch-chip")
    # The focused swatch shows it: the hidden radio's focus ring is drawn on its chip.
    assert chip.evaluate("chip => getComputedStyle(chip).outlineStyle") == "dashed"
    page.keyboard.press("Enter")
    page.wait_for_url("**/?*colour=red*")
    assert "red-canon.jpg" in card_names(page)
