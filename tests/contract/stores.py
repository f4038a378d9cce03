"""Fresh, empty catalog stores of each kind, for tests that run on every store."""

import os
import uuid
from pathlib import Path
from typing import Any

import pymongo
import pytest

from catalog.store import ImageStore, open_store
from catalog.store.mongo import MongoImageStore
from tests.contract.mongomock_store import mongomock_store

MONGO_URL = os.environ.get("MONGO_URL", "")


def empty_store(kind: str, root: Path) -> ImageStore:
    """SQLite under ``root``, mongomock, or a new database on ``MONGO_URL`` (skipped without)."""
    if kind == "sqlite":
        root.mkdir(parents=True, exist_ok=True)
        return open_store(f"sqlite:///{root / 'catalog.db'}", root / "blobs")
    if kind == "mongomock":
        return mongomock_store()[0]
    if not MONGO_URL:
        pytest.skip("MONGO_URL is not set: no MongoDB server to run the store suite against")
    return server_store()[0]


def server_store() -> tuple[MongoImageStore, pymongo.MongoClient[dict[str, Any]]]:
    """A Mongo store on a new database of the ``MONGO_URL`` server, and its client."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        MONGO_URL, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    return MongoImageStore(client, f"darkroom_test_{uuid.uuid4().hex[:12]}"), client
