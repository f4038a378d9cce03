"""The gallery in Debian's chromium: filters in the URL, the back button, a phone's screen."""

import io
import re
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.conftest import page_in
from tests.stack import Stack

pytestmark = pytest.mark.browser

PHONE = ViewportSize(width=390, height=844)


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page on a phone's screen (390×844 CSS px at 3x), leaving a screenshot as ``page`` does."""
    with page_in(browser, request, viewport=PHONE, device_scale_factor=3, is_mobile=True) as opened:
        yield opened


def card_facts(page: Page) -> list[dict[str, str]]:
    """Each card's name, format and size as the grid shows them."""
    facts: list[dict[str, str]] = page.eval_on_selector_all(
        "li.card",
        """cards => cards.map(c => ({
            name: c.querySelector('.name').textContent,
            dims: c.querySelector('.dims').textContent,
            width: c.dataset.width,
            height: c.dataset.height,
        }))""",
    )
    return facts


def shown_count(page: Page) -> int:
    """The number in "N images" above the grid."""
    text = page.inner_text("#result-count")
    match = re.fullmatch(r"(\d+) images?", text.replace(",", ""))
    assert match, text
    return int(match.group(1))


def submit(page: Page, url_part: str) -> None:
    """Submit the query form and wait for the page it leads to."""
    page.click("#query-form button[type=submit]")
    page.wait_for_url(f"**/?*{url_part}*")


def test_filter_by_format_and_orientation_shows_only_matching_images(
    page: Page, stack: Stack
) -> None:
    page.goto(stack.gateway.url + "/")
    everything = shown_count(page)
    assert everything >= 8

    page.get_by_label("Format").select_option("png")
    submit(page, "format=png")
    pngs = card_facts(page)
    assert {"astronaut.png", "camera.png", "chelsea.png", "coffee.png"} <= {c["name"] for c in pngs}
    assert all(c["dims"].endswith("PNG") for c in pngs)
    assert shown_count(page) == len(pngs) < everything
    # Empty fields stay out of the URL: it is the query and nothing else.
    assert "min_width" not in page.url and "name=" not in page.url

    page.get_by_label("Orientation").select_option("square")
    submit(page, "orientation=square")
    squares = card_facts(page)
    assert {"astronaut.png", "camera.png"} <= {c["name"] for c in squares}
    assert all(c["dims"].endswith("PNG") and c["width"] == c["height"] for c in squares)
    assert shown_count(page) == len(squares)

    page.get_by_label("Format").select_option("jpeg")
    page.get_by_label("Orientation").select_option("landscape")
    submit(page, "format=jpeg")
    landscapes = card_facts(page)
    assert {"rocket.jpg", "hubble_deep_field.jpg"} <= {c["name"] for c in landscapes}
    assert all(
        c["dims"].endswith("JPEG") and int(c["width"]) > int(c["height"]) for c in landscapes
    )


def test_the_back_button_restores_the_previous_filters(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/")
    everything = shown_count(page)
    page.get_by_label("Format").select_option("png")
    submit(page, "format=png")
    pngs = shown_count(page)
    page.get_by_label("Orientation").select_option("square")
    page.get_by_label("min width").fill("500")
    submit(page, "orientation=square")
    assert page.input_value("select[name=orientation]") == "square"

    page.go_back()
    page.wait_for_url(re.compile(r".*/\?format=png&sort=-created$"))
    # The form shows the query of the results on screen, not what was chosen before leaving.
    assert page.input_value("select[name=format]") == "png"
    assert page.input_value("select[name=orientation]") == ""
    assert page.input_value("input[name=min_width]") == ""
    assert page.is_enabled("input[name=min_width]")
    assert shown_count(page) == pngs
    assert all(c["dims"].endswith("PNG") for c in card_facts(page))

    page.go_back()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.input_value("select[name=format]") == ""
    assert shown_count(page) == everything

    page.go_forward()
    page.wait_for_url(re.compile(r".*/\?format=png&sort=-created$"))
    assert page.input_value("select[name=format]") == "png"


def test_every_control_is_labelled_and_reachable_by_keyboard(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/")
    labels = ["min width", "max width", "min height", "max height", "Format", "Orientation"]
    for label in [*labels, "Name contains", "Sort order"]:
        assert page.get_by_label(label, exact=True).count() == 1, label
    reached: list[str] = []
    for _ in range(40):  # bounded: the form's controls come within the first tabs
        page.keyboard.press("Tab")
        name = page.evaluate("document.activeElement.getAttribute('name') || ''")
        if name and name not in reached:
            reached.append(name)
        if name == "sort":
            break
    assert reached == [
        "min_width", "max_width", "min_height", "max_height", "format", "orientation",
        "name", "taken_after", "taken_before", "camera", "has_location", "colour", "sort",
    ]  # fmt: skip
    page.get_by_label("Name contains").fill("rocket")
    page.get_by_label("Name contains").press("Enter")
    page.wait_for_url("**/?*name=rocket*")
    assert [c["name"] for c in card_facts(page)] == ["rocket.jpg"]
    assert page.inner_text("#result-count") == "1 image"


def test_an_empty_result_names_the_filter_to_loosen(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/?min_width=1000&format=png")
    assert page.locator("li.card").count() == 0
    assert "width at least 1000 px" in page.inner_text("#no-results .narrowest-filter")
    page.click("#loosen >> text=Without width at least 1000 px")
    page.wait_for_url(re.compile(r".*/\?format=png&sort=-created$"))
    assert page.locator("li.card").count() >= 4


@pytest.mark.parametrize(
    "path", ["/", "/?min_width=1000&format=png&name=a-rather-long-name-nothing-has"]
)
def test_a_phone_screen_has_no_horizontal_scroll(phone: Page, stack: Stack, path: str) -> None:
    phone.goto(stack.gateway.url + path)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.evaluate("document.body.scrollWidth") <= PHONE["width"]


def test_a_high_dpi_screen_gets_the_640_px_thumbnails(phone: Page, stack: Stack) -> None:
    phone.goto(stack.gateway.url + "/?min_width=1000")
    image = "li.card:nth-child(1) img"
    phone.locator(image).scroll_into_view_if_needed()
    phone.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth; }",
        arg=image,
    )
    chosen = phone.eval_on_selector(image, "i => i.currentSrc")
    assert chosen.endswith("/thumb?size=640")
    # The 2x picture is drawn at half its pixel size: 640 px make a 320-px-wide image.
    width, height = phone.eval_on_selector(image, "i => [i.naturalWidth, i.naturalHeight]")
    assert max(width, height) == 320
    with Image.open(io.BytesIO(phone.request.get(chosen).body())) as picture:
        assert max(picture.size) == 640
