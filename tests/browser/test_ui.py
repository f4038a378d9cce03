"""The UI in Debian's chromium, driven by Playwright."""

import pytest
from playwright.sync_api import Page, expect

from tests.stack import Stack

pytestmark = pytest.mark.browser


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


def test_low_pass_shows_only_the_fields_of_its_method(page: Page, stack: Stack) -> None:
    page.goto(stack.gateway.url + "/?min_width=640&max_width=640")
    page.click("li.card a")
    page.select_option("#op-select", "low_pass")
    sigma = page.locator("input[name='p.low_pass.sigma']")
    cutoff = page.locator("input[name='p.low_pass.cutoff']")
    order = page.locator("input[name='p.low_pass.order']")
    # Retrying assertions: the page's script may still be starting after the click.
    expect(sigma).to_be_visible()
    expect(cutoff).to_be_hidden()
    expect(order).to_be_hidden()
    page.select_option("select[name='p.low_pass.method']", "butterworth")
    expect(cutoff).to_be_visible()
    expect(order).to_be_visible()
    expect(sigma).to_be_hidden()
    page.fill("input[name='p.low_pass.cutoff']", "0.3")
    page.click("#apply")
    page.wait_for_selector("#result-image")
    pipeline = page.inner_text("#canonical-pipeline")
    assert pipeline.startswith("low_pass:cutoff=0.3,method=butterworth")
    assert "sigma" not in pipeline


def test_without_the_processor_pages_degrade_and_then_recover(page: Page, stack: Stack) -> None:
    stack.processor.stop()
    try:
        page.wait_for_timeout(2_500)  # the gateway looks at the processor again after 2 s
        page.goto(stack.gateway.url + "/")
        assert page.locator("#processing-unavailable").is_visible()
        assert loaded_size(page, "li.card:nth-child(1) img") == (320, 320)  # the placeholder
        page.click("li.card >> text=rocket.jpg")
        assert page.locator("#processing-unavailable").is_visible()
        assert loaded_size(page, "#original img") == (640, 427)
        assert page.locator("#metadata").is_visible()
    finally:
        stack.processor.start()
    page.wait_for_timeout(2_500)  # the gateway looks at the processor again after 2 s
    page.goto(stack.gateway.url + "/")
    assert page.locator("#processing-unavailable").count() == 0
    width, height = loaded_size(page, "li.card:nth-child(1) img")
    assert max(width, height) == 320
    assert page.locator("li.card:nth-child(1) img").get_attribute("src", timeout=1000) != (
        "/static/unavailable.svg"
    )
