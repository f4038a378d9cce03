"""The gateway in front of the real catalog and processor apps, joined by ASGITransport."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.config import Settings as CatalogSettings
from catalog.main import create_app as create_catalog
from gateway.config import Settings
from gateway.main import create_app
from processor.main import create_app as create_processor

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in {".jpg", ".png"})


@dataclass(frozen=True)
class Backends:
    """The running backend apps and the id of each sample in the catalog."""

    catalog: FastAPI
    processor: FastAPI
    ids: dict[str, str]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """Catalog (holding every sample) and processor apps with their lifespans running."""
    data = tmp_path_factory.mktemp("catalog")
    catalog = create_catalog(
        settings=CatalogSettings(store=f"sqlite:///{data / 'catalog.db'}", blobs=data / "blobs")
    )
    processor = create_processor()
    with TestClient(catalog) as catalog_client, TestClient(processor):
        ids = {}
        for path in SAMPLE_FILES:
            response = catalog_client.post(
                "/v1/images", params={"name": path.name}, content=path.read_bytes()
            )
            assert response.status_code == 201, response.text
            ids[path.name] = response.json()["id"]
        yield Backends(catalog, processor, ids)


def gateway_client(
    settings: Settings,
    catalog: httpx.AsyncBaseTransport | None = None,
    processor: httpx.AsyncBaseTransport | None = None,
) -> TestClient:
    """A TestClient for a gateway with the given settings and backend transports."""
    app = create_app(settings=settings, catalog_transport=catalog, processor_transport=processor)
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def settings() -> Settings:
    return Settings(catalog_url="http://catalog", processor_url="http://processor")


@pytest.fixture
def client(backends: Backends, settings: Settings) -> Iterator[TestClient]:
    with gateway_client(
        settings,
        httpx.ASGITransport(app=backends.catalog),
        httpx.ASGITransport(app=backends.processor),
    ) as test_client:
        yield test_client


@pytest.fixture
def ids(backends: Backends) -> dict[str, str]:
    return backends.ids
