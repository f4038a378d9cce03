"""A hung backend (SIGSTOP) gives a 504 page within the call's budget, then recovers."""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

METADATA_BUDGET_S = 1.0
RENDER_BUDGET_S = 2.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    budgets = {
        "GATEWAY_METADATA_TIMEOUT_S": str(METADATA_BUDGET_S),
        "GATEWAY_RENDER_TIMEOUT_S": str(RENDER_BUDGET_S),
        "GATEWAY_CACHE_MAX_ITEMS": "0",
    }
    with running_stack(tmp_path_factory.mktemp("hung"), {"gateway": budgets}) as running:
        yield running


def timed(client: httpx.Client, path: str, **params: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, params=params)
    return response, time.monotonic() - started


def an_image(client: httpx.Client) -> str:
    cards = client.get("/").text.split('data-id="')[1:]
    assert cards, "the gallery shows no image"
    return cards[0].split('"', 1)[0]


def test_a_hung_catalog_is_a_504_page_within_the_metadata_budget(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as client:
        assert client.get("/").status_code == 200
        with stack.catalog.hung():
            response, seconds = timed(client, "/")
        assert response.status_code == 504
        assert "did not answer within 1 s" in response.text
        assert response.headers["retry-after"]
        assert seconds < METADATA_BUDGET_S + 1.0
        assert client.get("/").status_code == 200  # back as soon as it answers


def test_a_hung_processor_fails_a_render_within_its_budget(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as client:
        image = an_image(client)
        ops = "rotate:degrees=33"
        assert client.get(f"/images/{image}/render", params={"ops": ops}).status_code == 200
        with stack.processor.hung():
            response, seconds = timed(
                client, f"/images/{image}/render", ops="rotate:degrees=34", format="png"
            )
            page, page_seconds = timed(client, f"/images/{image}")
        assert response.status_code == 504
        # The canonical form (metadata) or the job (render budget) times out first.
        assert seconds < RENDER_BUDGET_S + 1.5
        # The image page degrades to what the catalog serves, within the metadata budget.
        assert page.status_code in (503, 504)
        assert 'id="processing-unavailable"' in page.text
        assert page_seconds < 2 * METADATA_BUDGET_S + 1.0
        time.sleep(2.5)  # the gateway looks at the processor again after 2 s
        assert client.get(f"/images/{image}/render", params={"ops": ops}).status_code == 200
