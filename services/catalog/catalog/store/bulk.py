"""Bulk loading, query plans and throwaway databases, for benchmarks and tests.

The service never calls these. Each works on a SqliteImageStore or a MongoImageStore, so
this module needs pymongo, as the tests and benchmarks do.
"""

import shutil
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, overload

from catalog.models import ImageQuery, ImageRecord
from catalog.store import ImageStore
from catalog.store.mongo import COLLECTION, MongoImageStore, to_document
from catalog.store.sqlite import INSERT, SqliteImageStore, page_sql, to_row

_MONGO_BATCH = 10_000


def add_records(store: ImageStore, records: Iterable[ImageRecord]) -> int:
    """Insert metadata-only records, without originals; returns how many were added."""
    if isinstance(store, SqliteImageStore):
        with store.write() as connection:
            return connection.executemany(INSERT, map(to_row, records)).rowcount
    images = _mongo(store).database[COLLECTION]
    added = 0
    for batch in _batches(records, _MONGO_BATCH):
        documents = [to_document(record, None) for record in batch]
        added += len(images.insert_many(documents, ordered=False).inserted_ids)
    return added


@overload
def explain(store: SqliteImageStore, query: ImageQuery) -> list[str]: ...
@overload
def explain(store: MongoImageStore, query: ImageQuery) -> dict[str, Any]: ...
def explain(store: ImageStore, query: ImageQuery) -> list[str] | dict[str, Any]:
    """The plan for one page of the query: SQLite's steps, or the MongoDB server's explain."""
    if isinstance(store, SqliteImageStore):
        sql, params = page_sql(query)
        rows = store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [row["detail"] for row in rows]
    return _mongo(store).page_cursor(query).explain()


def drop(store: ImageStore) -> None:
    """Delete the store's records and originals for good; the store is not to be used after."""
    if isinstance(store, SqliteImageStore):
        store.close()
        for suffix in ("", "-wal", "-shm"):
            store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
        shutil.rmtree(store.blobs.root, ignore_errors=True)
        return
    database = _mongo(store).database
    database.client.drop_database(database.name)


def _mongo(store: ImageStore) -> MongoImageStore:
    """The store as a Mongo store; TypeError for any kind this module does not know."""
    if not isinstance(store, MongoImageStore):
        raise TypeError(f"no bulk helpers for {type(store).__name__}")
    return store


def _batches(records: Iterable[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    """The records in lists of up to size, so a million never sit in memory at once."""
    remaining = iter(records)
    while batch := list(islice(remaining, size)):
        yield batch
