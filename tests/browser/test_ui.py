"""The UI in Debian's chromium, driven by Playwright."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.stack import Stack, running_stack

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# Without these, chromium keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def loaded_size(page: Page, selector: str) -> tuple[int, int]:
    """Natural size of an <img> once it has loaded (0×0 if it failed)."""
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete; }", arg=selector
    )
    size = page.eval_on_selector(selector, "i => [i.naturalWidth, i.naturalHeight]")
    return int(size[0]), int(size[1])


def test_filter_open_and_rotate(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/")
    assert page.locator("li.card").count() == 8
    for index in range(8):
        width, height = loaded_size(page, f"li.card:nth-child({index + 1}) img")
        assert max(width, height) == 320

    page.fill("input[name=min_width]", "600")
    page.fill("input[name=max_width]", "700")
    page.click("#query-form button[type=submit]")
    page.wait_for_url("**/?*min_width=600*")
    names = page.locator("li.card .name").all_inner_texts()
    assert sorted(names) == ["coffee.png", "rocket.jpg"]

    page.click("li.card >> text=rocket.jpg")
    page.wait_for_selector("#process-form")
    assert loaded_size(page, "#original img") == (640, 427)
    # Only the selected operation's parameters are shown.
    page.select_option("#op-select", "rotate")
    assert page.locator("fieldset[data-op=rotate]").is_visible()
    assert not page.locator("fieldset[data-op=grayscale]").is_visible()

    page.fill("input[name='p.rotate.degrees']", "90")
    page.select_option("#format-select", "png")
    page.click("#apply")
    page.wait_for_selector("#result-image")
    assert loaded_size(page, "#result-image") == (427, 640)
    assert page.inner_text("#canonical-pipeline").startswith("rotate:degrees=90")

    # A second step is appended to the pipeline.
    page.select_option("#op-select", "grayscale")
    page.click("#add-step")
    page.wait_for_selector("#steps li:nth-child(2)")
    assert page.locator("#steps li").all_inner_texts()[1] == "grayscale"
    assert loaded_size(page, "#result-image") == (427, 640)


def test_out_of_range_parameter_is_explained(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/?min_width=640&max_width=640")
    page.click("li.card a")
    page.select_option("#op-select", "low_pass")
    # Bypass the browser's own min/max check to reach the server's validation.
    page.eval_on_selector("input[name='p.low_pass.sigma']", "i => { i.min = ''; i.max = ''; }")
    page.fill("input[name='p.low_pass.sigma']", "1000")
    page.click("#apply")
    message = page.inner_text("#process-error")
    assert "low_pass.sigma" in message
