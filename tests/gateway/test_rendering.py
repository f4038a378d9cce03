"""The renderer: results keyed by the canonical pipeline, concurrent misses computed once."""

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.config import Settings
from tests.gateway.conftest import Backends, gateway_client


class CountingProcessor(httpx.AsyncBaseTransport):
    """The real processor app behind a transport that counts jobs and slows each one down."""

    def __init__(self, app: FastAPI, *, delay_s: float) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.delay_s = delay_s
        self.jobs = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/process":
            self.jobs += 1
            await asyncio.sleep(self.delay_s)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def counting(backends: Backends) -> Iterator[tuple[TestClient, CountingProcessor]]:
    processor = CountingProcessor(backends.processor, delay_s=0.3)
    settings = Settings(catalog_url="http://catalog", processor_url="http://processor")
    with gateway_client(settings, httpx.ASGITransport(app=backends.catalog), processor) as client:
        yield client, processor


def test_equal_pipelines_share_one_cache_entry_and_etag(
    counting: tuple[TestClient, CountingProcessor], ids: dict[str, str]
) -> None:
    client, processor = counting
    url = f"/images/{ids['rocket.jpg']}/render"
    spellings = ["rotate", "rotate:degrees=90", " rotate:expand=true,degrees=90.0 "]
    responses = [client.get(url, params={"ops": ops, "format": "png"}) for ops in spellings]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({r.headers["etag"] for r in responses}) == 1
    assert len({r.content for r in responses}) == 1
    assert processor.jobs == 1
    assert len(client.app.state.renderer.results) == 1  # type: ignore[attr-defined]
    again = client.get(
        url,
        params={"ops": "rotate:degrees=90", "format": "png"},
        headers={"If-None-Match": responses[0].headers["etag"]},
    )
    assert again.status_code == 304


def test_different_pipelines_are_different_entries(
    counting: tuple[TestClient, CountingProcessor], ids: dict[str, str]
) -> None:
    client, processor = counting
    url = f"/images/{ids['rocket.jpg']}/render"
    first = client.get(url, params={"ops": "rotate:degrees=90"})
    second = client.get(url, params={"ops": "rotate:degrees=-90"})
    assert first.headers["etag"] != second.headers["etag"]
    assert processor.jobs == 2


def test_concurrent_identical_misses_are_computed_once(
    counting: tuple[TestClient, CountingProcessor], ids: dict[str, str]
) -> None:
    client, processor = counting
    url = f"/images/{ids['retina.jpg']}/render"
    params = {"ops": "grayscale|rotate:degrees=45", "format": "png"}
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: client.get(url, params=params), range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.content for r in responses}) == 1
    assert processor.jobs == 1


def test_a_failed_computation_is_not_cached_and_is_retried(
    counting: tuple[TestClient, CountingProcessor], ids: dict[str, str]
) -> None:
    client, processor = counting
    url = f"/images/{ids['rocket.jpg']}/render"
    # Valid syntax and parameters, but the crop lies outside the image: the processor refuses it.
    params = {"ops": "crop:x=5000,width=10,height=10"}
    assert client.get(url, params=params).status_code == 422
    assert client.get(url, params=params).status_code == 422
    assert processor.jobs == 2


def test_an_invalid_pipeline_is_refused_before_the_original_is_fetched(
    counting: tuple[TestClient, CountingProcessor], ids: dict[str, str]
) -> None:
    client, processor = counting
    response = client.get(f"/images/{ids['rocket.jpg']}/render", params={"ops": "sepia"})
    assert response.status_code == 404
    assert "unknown operation" in response.text
    assert processor.jobs == 0


class CountingCatalog(httpx.AsyncBaseTransport):
    """The real catalog app behind a transport that counts downloads of originals."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.downloads = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            self.downloads += 1
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(("originals_max_bytes", "downloads"), [(64 << 20, 1), (0, 3)])
def test_renders_of_one_photo_download_its_original_once(
    backends: Backends, ids: dict[str, str], originals_max_bytes: int, downloads: int
) -> None:
    catalog = CountingCatalog(backends.catalog)
    settings = Settings(
        catalog_url="http://catalog",
        processor_url="http://processor",
        originals_max_bytes=originals_max_bytes,
    )
    processor = httpx.ASGITransport(app=backends.processor)
    with gateway_client(settings, catalog, processor) as client:
        url = f"/images/{ids['rocket.jpg']}/render"
        for factor in ("1.1", "1.2", "1.3"):
            response = client.get(url, params={"ops": f"contrast:factor={factor}"})
            assert response.status_code == 200
    assert catalog.downloads == downloads
