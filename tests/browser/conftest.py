"""Shared browser fixtures: one stack of real services, Debian's chromium, a page per test.

Every test leaves a full-page screenshot of where it ended under ``test-artifacts/``
(git-ignored), named after the test, so a failure can be looked at afterwards.
"""

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.stack import Stack, running_stack

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
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("browser")) as running:
        yield running


# Per module: Playwright's sync API keeps an event loop running in this thread while it is
# open, and the other suites' asyncio.run() must not find one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def page_in(browser: Browser, request: pytest.FixtureRequest, **options: Any) -> Iterator[Page]:
    """A page in a fresh context with ``options``; leaves a screenshot named after the test."""
    context = browser.new_context(**options)
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    try:
        yield opened
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid.split("::", 1)[-1])
        # A crashed page leaves no screenshot, but that must not hide the test's own failure.
        with contextlib.suppress(Exception):
            opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    with page_in(browser, request, accept_downloads=True) as opened:
        yield opened
