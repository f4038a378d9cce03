"""Bulk loading, query plans and throwaway databases, for benchmarks and tests.

The service never calls these. Each works on a SqliteImageStore or a MongoImageStore, so
this module needs pymongo, as the tests and benchmarks do.
"""

import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, overload

from catalog.fingerprint import band_radius, bands, neighbours
from catalog.models import ImageQuery, ImageRecord
from catalog.store import ImageStore
from catalog.store.mongo import COLLECTION, MongoImageStore, to_document
from catalog.store.sqlite import (
    INSERT,
    INSERT_BAND,
    INSERT_HASH,
    PROBE_SQL,
    SqliteImageStore,
    group_page_sql,
    hash_rows,
    to_row,
)

_MONGO_BATCH = 10_000
_SQLITE_BATCH = 50_000


def add_records(store: ImageStore, records: Iterable[ImageRecord]) -> int:
    """Insert metadata-only records, without originals; returns how many were added."""
    if isinstance(store, SqliteImageStore):
        added = 0
        with store.write() as connection:
            for batch in _batches(records, _SQLITE_BATCH):
                added += connection.executemany(INSERT, map(to_row, batch)).rowcount
                _add_hash_rows(connection, batch)
        return added
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
        sql, params = store.page_plan(query)
        rows = store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [row["detail"] for row in rows]
    return _mongo(store).page_cursor(query).explain()


def _add_hash_rows(connection: sqlite3.Connection, records: list[ImageRecord]) -> None:
    """The image_hashes and image_bands rows of the records that have a pHash."""
    rows = [hash_rows(record) for record in records if record.phash is not None]
    connection.executemany(INSERT_HASH, [hash_row for hash_row, _ in rows])
    connection.executemany(INSERT_BAND, [band for _, bands in rows for band in bands])


def join_groups(store: ImageStore, ids: list[str]) -> None:
    """Group records added by add_records with their near-duplicates, as an add would.

    add_records leaves every record ungrouped: probing a million records one by one would
    cost minutes, so a caller names the records that may have near-duplicates.
    """
    if isinstance(store, SqliteImageStore):
        store.join_groups(ids)
    else:
        _mongo(store).join_groups(ids)


@overload
def explain_similar(store: SqliteImageStore, value: int, max_distance: int) -> list[str]: ...
@overload
def explain_similar(store: MongoImageStore, value: int, max_distance: int) -> dict[str, Any]: ...
def explain_similar(store: ImageStore, value: int, max_distance: int) -> list[str] | dict[str, Any]:
    """The plan of a similar-images probe: one band's in SQLite, the whole find in MongoDB."""
    if isinstance(store, SqliteImageStore):
        values = sorted(neighbours(bands(value)[0], band_radius(max_distance)))
        sql = PROBE_SQL.format(values=", ".join("?" * len(values)))
        rows = store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", [0, *values])
        return [row["detail"] for row in rows]
    return _mongo(store).probe_cursor(value, max_distance).explain()


@overload
def explain_groups(store: SqliteImageStore) -> list[str]: ...
@overload
def explain_groups(store: MongoImageStore) -> dict[str, Any]: ...
def explain_groups(store: ImageStore) -> list[str] | dict[str, Any]:
    """The plan of the first page of duplicate groups."""
    if isinstance(store, SqliteImageStore):
        sql, params = group_page_sql("", 20)
        rows = store.connection().execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return [row["detail"] for row in rows]
    return _mongo(store).group_cursor("").explain()


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
