"""A Mongo store over mongomock, for the contract suite and the catalog's API tests."""

import functools
import uuid

import mongomock
import mongomock.gridfs

from catalog.store.mongo import MongoImageStore


@functools.cache
def _enable_gridfs() -> None:
    # gridfs checks isinstance(db, pymongo.Database); mongomock's own documented switch
    # widens that check to its fakes (once per process).
    mongomock.gridfs.enable_gridfs_integration()


def mongomock_store() -> tuple[MongoImageStore, mongomock.MongoClient]:
    """A Mongo store on a fresh in-memory mongomock client and database."""
    _enable_gridfs()
    client = mongomock.MongoClient(tz_aware=True)
    return MongoImageStore(client, f"darkroom_test_{uuid.uuid4().hex[:12]}"), client
