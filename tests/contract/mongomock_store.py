"""A Mongo store over mongomock, for the contract suite and the catalog's API tests."""

import functools
import uuid
from typing import Any

import mongomock
import mongomock.gridfs

from catalog.store.mongo import MongoImageStore


@functools.cache
def _enable_gridfs() -> None:
    # gridfs checks isinstance(db, pymongo.Database); mongomock's own documented switch
    # widens that check to its fakes (once per process).
    mongomock.gridfs.enable_gridfs_integration()  # type: ignore[no-untyped-call]


def mongomock_store() -> tuple[MongoImageStore, Any]:
    """A Mongo store on a fresh in-memory mongomock client and database."""
    _enable_gridfs()
    client: Any = mongomock.MongoClient(tz_aware=True)
    return MongoImageStore(client, f"darkroom_test_{uuid.uuid4().hex[:12]}"), client
