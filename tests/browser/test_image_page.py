"""The image page in Debian's chromium: controls, live preview, downloads, histograms, phones."""

import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Page, Request, Route

from tests.browser.test_ui import loaded_size
from tests.stack import Stack

pytestmark = pytest.mark.browser


def open_rocket(page: Page, stack: Stack, query: str = "") -> None:
    """Open rocket.jpg's page (640 × 427) from the gallery, then add ``query`` to its URL."""
    page.goto(stack.gateway.url + "/?min_width=640&max_width=640")
    page.click("li.card >> text=rocket.jpg")
    page.wait_for_selector("#process-form")
    if query:
        page.goto(page.url.split("?")[0] + "?" + query)


def by_id(element_id: str) -> str:
    """A selector for an id holding dots, as the form's ids do (p.rotate.degrees)."""
    return f"[id='{element_id}']"


def test_build_a_two_step_pipeline_with_the_controls(page: Page, stack: Stack) -> None:
    open_rocket(page, stack)
    page.select_option("#op-select", "rotate")
    slider = page.locator(by_id("p.rotate.degrees-slider"))
    assert slider.is_visible()
    slider.fill("45")
    assert page.input_value(by_id("p.rotate.degrees")) == "45"
    # Typing in the box moves the slider too.
    page.fill(by_id("p.rotate.degrees"), "30")
    page.dispatch_event(by_id("p.rotate.degrees"), "input")
    assert slider.input_value() == "30"
    page.uncheck(by_id("p.rotate.expand"))
    page.click("#apply")
    page.wait_for_selector("#result-image")
    assert page.inner_text("#canonical-pipeline").startswith("rotate:degrees=30,expand=false")
    assert loaded_size(page, "#result-image") == (640, 427)  # not expanded

    page.select_option("#op-select", "brightness")
    page.locator(by_id("p.brightness.offset-slider")).fill("-40")
    page.click("#add-step")
    page.wait_for_selector("#steps li:nth-child(2)")
    rotate = "rotate:degrees=30,expand=false,fill=transparent,interpolation=bilinear"
    assert page.locator("#steps li").all_inner_texts() == [rotate, "brightness:offset=-40"]
    # Reordered by its link; both steps survive.
    page.click("#steps li:nth-child(2) a.move-up")
    page.wait_for_url("**ops=brightness*")
    assert page.locator("#steps li").all_inner_texts() == ["brightness:offset=-40", rotate]
    assert page.inner_text("#canonical-pipeline").startswith("brightness:offset=-40|rotate")


def test_moving_a_slider_previews_a_small_result_and_drops_stale_ones(
    page: Page, stack: Stack
) -> None:
    open_rocket(page, stack, "ops=grayscale|rotate:degrees=10&format=png")
    first = page.get_attribute("#result-image", "src")
    assert first is not None and "/render?" in first
    previews: list[str] = []
    page.on(
        "request",
        lambda request: previews.append(request.url) if "/preview?" in request.url else None,
    )
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))

    # The first preview is held back, so the second overtakes it: the first must be cancelled.
    held: list[Route] = []

    def hold_first(route: Route, request: Request) -> None:
        if not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/preview?*", hold_first)
    slider = page.locator(by_id("p.rotate.degrees-slider"))
    slider.fill("20")
    page.wait_for_function(
        "() => document.getElementById('preview-status').textContent.includes('Rendering')"
    )
    # Five moves within the debounce: one request for all of them.
    slider.evaluate(
        "s => { for (let i = 0; i < 5; i++) {"
        " s.stepUp(); s.dispatchEvent(new Event('input', {bubbles: true})); } }"
    )
    expected = "rotate:degrees=20.5,expand=true,fill=transparent,interpolation=bilinear"
    page.wait_for_function(
        "text => { const i = document.getElementById('result-image');"
        " const status = document.getElementById('preview-status').textContent;"
        " return status.includes(text) && i.src.startsWith('blob:') && i.complete"
        " && i.naturalWidth > 0; }",
        arg=expected,
    )
    assert len(previews) == 2
    assert parse_qs(urlsplit(previews[1]).query)["ops"] == [f"grayscale|{expected}"]
    assert previews[0] in failed  # aborted
    width, _ = loaded_size(page, "#result-image")
    assert width <= 640
    # The full-size render is one click away; the histogram follows the preview.
    full = page.get_attribute("#preview-full", "href") or ""
    assert parse_qs(urlsplit(full).query) == {
        "ops": [f"grayscale|{expected}"],
        "format": ["png"],
    }
    assert "rotate%3Adegrees%3D20.5" in (page.get_attribute("#result-histogram", "src") or "")
    page.unroute("**/preview?*")
    # The slider answers the keyboard, and its box follows.
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert page.input_value(by_id("p.rotate.degrees")) == "20.6"
    page.wait_for_function(
        "() => document.getElementById('preview-status').textContent.includes('degrees=20.6')"
    )


def test_download_the_result_as_png(page: Page, stack: Stack, tmp_path: Path) -> None:
    open_rocket(page, stack, "ops=rotate:degrees=90")
    assert page.locator("#downloads a").all_inner_texts() == ["JPEG", "PNG", "WEBP", "AVIF"]
    with page.expect_download() as info:
        page.click("#download-png")
    download = info.value
    assert (
        download.suggested_filename
        == "rocket-rotate-degrees-90-expand-true-fill-transparent-interpolation-bilinear.png"
    )
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with Image.open(io.BytesIO(saved.read_bytes())) as result:
        assert (result.format, result.size) == ("PNG", (427, 640))


def test_histograms_compare_and_copy(page: Page, stack: Stack) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_rocket(page, stack, "ops=invert")
    assert loaded_size(page, "#original-histogram") == (320, 160)
    assert loaded_size(page, "#result-histogram") == (320, 160)
    assert page.get_attribute("#original-histogram", "alt")

    page.locator("#compare-range").fill("20")
    split = page.eval_on_selector(
        "#compare", "f => getComputedStyle(f).getPropertyValue('--split')"
    )
    assert split.strip() == "20%"
    clip = page.eval_on_selector("#compare-after", "i => getComputedStyle(i).clipPath")
    assert clip == "inset(0px 0px 0px 20%)"

    page.click("button[data-copy=curl-command]")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.inner_text("#curl-command").strip()
    command = "curl -X POST --data-binary @rocket.jpg -o result.jpg"
    assert copied.startswith(f"{command} '{stack.processor.url}/v1/process?ops=invert")


def test_without_javascript_the_form_and_links_still_work(page: Page, stack: Stack) -> None:
    page.route("**/static/image.js", lambda route: route.abort())
    open_rocket(page, stack)
    # Every operation's fieldset is shown; sliders stay hidden and number boxes do the work.
    assert page.locator(by_id("p.rotate.degrees-slider")).is_hidden()
    page.select_option("#op-select", "rotate")
    page.fill(by_id("p.rotate.degrees"), "90")
    page.uncheck(by_id("p.rotate.expand"))
    page.click("#apply")
    page.wait_for_selector("#result-image")
    assert page.inner_text("#canonical-pipeline").startswith("rotate:degrees=90,expand=false")
    assert page.locator("#compare").is_hidden()


def test_a_phone_sees_the_page_without_sideways_scrolling(page: Page, stack: Stack) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    long = "rotate:degrees=30,fill=%23336699ff|low_pass:method=butterworth,cutoff=0.3,order=4"
    open_rocket(page, stack, f"ops={long}&format=webp")
    page.wait_for_selector("#result-image")
    page.select_option("#op-select", "low_pass")
    for selector in ("#result-image", "#original-histogram", "#curl-command", "#process-form"):
        page.locator(selector).scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    open_rocket(page, stack)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
