"""ImageStore on SQLite (stdlib sqlite3, WAL) with originals as content-addressed files."""

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from catalog.blobs import BlobFile, BlobStore
from catalog.errors import ImageNotFound
from catalog.models import (
    FORMATS,
    ORIENTATIONS,
    CatalogStats,
    CountQuery,
    CursorPosition,
    ImageCount,
    ImageFilters,
    ImageMeta,
    ImagePage,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    encode_cursor,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUSY_TIMEOUT_MS = 30_000
_CACHE_KIB = 64 * 1024
_MMAP_BYTES = 1 << 30
# Files checked against the records per query of a sweep (well under SQLite's variable limit).
_SWEEP_BATCH = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    sha256           TEXT NOT NULL UNIQUE,
    format           TEXT NOT NULL,
    mode             TEXT NOT NULL,
    width            INTEGER NOT NULL,
    height           INTEGER NOT NULL,
    pixels           INTEGER NOT NULL,
    aspect           REAL NOT NULL,
    orientation      TEXT NOT NULL,
    bytes            INTEGER NOT NULL,
    exif_orientation INTEGER NOT NULL,
    created          INTEGER NOT NULL  -- microseconds since the Unix epoch, UTC
) WITHOUT ROWID;
-- One index per sort order: (value, id) is the order and the keyset position, and the
-- filterable columns ride along so rows a filter rejects are skipped inside the index,
-- without a lookup into the table. (Replaces the narrower (value, id) indexes.)
DROP INDEX IF EXISTS images_width;
DROP INDEX IF EXISTS images_height;
DROP INDEX IF EXISTS images_pixels;
DROP INDEX IF EXISTS images_created;
DROP INDEX IF EXISTS images_name;
CREATE INDEX IF NOT EXISTS images_by_width
    ON images (width, id, height, pixels, format, orientation);
CREATE INDEX IF NOT EXISTS images_by_height
    ON images (height, id, width, pixels, format, orientation);
CREATE INDEX IF NOT EXISTS images_by_pixels
    ON images (pixels, id, width, height, format, orientation);
CREATE INDEX IF NOT EXISTS images_by_created
    ON images (created, id, width, height, pixels, format, orientation);
CREATE INDEX IF NOT EXISTS images_by_name
    ON images (name, id, width, height, pixels, format, orientation);
-- Not a sort order: counts filtered by format or orientation seek here instead of
-- walking a whole sort index.
CREATE INDEX IF NOT EXISTS images_by_format
    ON images (format, orientation, width, height, pixels);

-- Counts by format and orientation, kept by triggers in the transaction that changes
-- images, so stats cost a few row reads instead of a scan of every image.
CREATE TABLE IF NOT EXISTS image_counts (
    facet TEXT NOT NULL,  -- 'format' or 'orientation'
    value TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (facet, value)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS images_count_insert AFTER INSERT ON images BEGIN
    INSERT INTO image_counts (facet, value, count)
    VALUES ('format', NEW.format, 1), ('orientation', NEW.orientation, 1)
    ON CONFLICT (facet, value) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS images_count_delete AFTER DELETE ON images BEGIN
    UPDATE image_counts SET count = count - 1
    WHERE (facet = 'format' AND value = OLD.format)
       OR (facet = 'orientation' AND value = OLD.orientation);
END;
-- Counts are empty only when the table is new or no image was ever added: (re)count then,
-- which also brings catalogs created before the counts existed up to date.
INSERT INTO image_counts (facet, value, count)
SELECT 'format', format, count(*) FROM images
WHERE NOT EXISTS (SELECT 1 FROM image_counts) GROUP BY format
UNION ALL
SELECT 'orientation', orientation, count(*) FROM images
WHERE NOT EXISTS (SELECT 1 FROM image_counts) GROUP BY orientation;
"""

_FIELDS = (
    "id", "name", "sha256", "format", "mode", "width", "height", "pixels", "aspect",
    "orientation", "bytes", "exif_orientation", "created",
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)
INSERT = f"INSERT INTO images ({_COLUMNS}) VALUES ({', '.join(f':{f}' for f in _FIELDS)})"
# Sort fields map to columns through this table only, so no query text reaches the SQL.
_SORT_COLUMNS = {f: f for f in ("width", "height", "pixels", "created", "name")}


def _to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def to_row(record: ImageRecord) -> dict[str, Any]:
    """The record as the named parameters of INSERT (created in microseconds since the epoch)."""
    row = {field: getattr(record, field) for field in _FIELDS}
    row["created"] = _to_micros(record.created)
    return row


def _record(row: sqlite3.Row) -> ImageRecord:
    fields = dict(row)
    fields["created"] = _from_micros(fields["created"])
    return ImageRecord.model_validate(fields)


class SqliteImageStore:
    """Records in one SQLite file, a connection per thread; originals in a BlobStore."""

    def __init__(self, path: Path, blobs: BlobStore) -> None:
        self._path = path
        self._blobs = blobs
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = self.connection()
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    @property
    def path(self) -> Path:
        """The SQLite database file."""
        return self._path

    @property
    def blobs(self) -> BlobStore:
        """Where the originals are kept."""
        return self._blobs

    def connection(self) -> sqlite3.Connection:
        """The calling thread's connection, opened on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            connection = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # A million records' indexes are a few hundred MB: a larger page cache and
            # memory-mapped reads keep deep index walks off the read() path.
            connection.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            connection.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            connection.create_function("casefold", 1, _casefold, deterministic=True)
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from the start."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _find(self, column: str, value: str) -> ImageRecord | None:
        sql = f"SELECT {_COLUMNS} FROM images WHERE {column} = ?"
        row = self.connection().execute(sql, (value,)).fetchone()
        return None if row is None else _record(row)

    def add(self, meta: ImageMeta, name: str, data: bytes) -> tuple[ImageRecord, bool]:
        """Store an image once per sha256; returns (record, created)."""
        existing = self._find("sha256", meta.sha256)
        if existing is not None:
            return existing, False
        # The (possibly large, fsynced) blob is written outside the write lock so uploads
        # overlap; a same-content blob is identical, so concurrent writers can share it.
        self._blobs.put(meta.sha256, data)
        record = ImageRecord.from_meta(meta, name=name)
        try:
            with self.write() as connection:
                row = connection.execute(
                    f"SELECT {_COLUMNS} FROM images WHERE sha256 = ?", (meta.sha256,)
                ).fetchone()
                if row is not None:
                    return _record(row), False
                if not self._blobs.exists(meta.sha256):  # a concurrent delete removed it
                    self._blobs.put(meta.sha256, data)
                connection.execute(INSERT, to_row(record))
        except sqlite3.IntegrityError:
            winner = self._find("sha256", meta.sha256)
            if winner is not None:
                return winner, False
            self._discard_blob(meta.sha256)
            raise
        except BaseException:
            self._discard_blob(meta.sha256)
            raise
        return record, True

    def _discard_blob(self, sha256: str) -> None:
        """Delete a blob that no record references."""
        with self.write() as connection:
            referenced = connection.execute(
                "SELECT 1 FROM images WHERE sha256 = ?", (sha256,)
            ).fetchone()
            if referenced is None:
                self._blobs.delete(sha256)

    def get(self, image_id: str) -> ImageRecord:
        """The record with this id; ImageNotFound otherwise."""
        record = self._find("id", image_id)
        if record is None:
            raise ImageNotFound(image_id)
        return record

    def content(self, image_id: str) -> bytes:
        """The original bytes of the image; ImageNotFound otherwise."""
        return self._blobs.read(self.get(image_id).sha256)

    def query(self, query: ImageQuery) -> ImagePage:
        """One page of records matching the filters, in the query's sort order."""
        sql, params = page_sql(query)
        connection = self.connection()
        connection.execute("BEGIN")  # one snapshot for both reads
        try:
            # Order and filter inside the sort's index first, then read the page's rows:
            # a WITHOUT ROWID table would otherwise be searched for every row skipped.
            ids = [row["id"] for row in connection.execute(sql, params)]
            page_ids = ids[: query.limit]
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM images WHERE id IN ({', '.join('?' * len(page_ids))})",
                page_ids,
            ).fetchall()
        finally:
            connection.execute("COMMIT")
        by_id = {row["id"]: _record(row) for row in rows}
        items: list[ImagePublic] = [by_id[image_id] for image_id in page_ids]
        next_cursor = encode_cursor(query.sort, items[-1]) if len(ids) > query.limit else None
        return ImagePage(items=items, next_cursor=next_cursor)

    def count(self, query: CountQuery) -> ImageCount:
        """How many records match the filters, counted up to the query's limit."""
        sql, params = count_sql(query)
        (found,) = self.connection().execute(sql, params).fetchone()
        return ImageCount.capped(found, query.limit)

    def delete(self, image_id: str) -> None:
        """Remove the record and its original; ImageNotFound otherwise."""
        with self.write() as connection:
            row = connection.execute(
                "DELETE FROM images WHERE id = ? RETURNING sha256", (image_id,)
            ).fetchone()
            if row is None:
                raise ImageNotFound(image_id)
        # The record is gone for good before its original: a crash in between leaves an
        # orphan file for the sweep, never a record without its original. The original is
        # deleted under the write lock, unless an add of the same bytes got in first.
        self._discard_blob(row["sha256"])

    def sweep_orphans(self, older_than: timedelta, *, stop: threading.Event | None = None) -> int:
        """Delete originals and temp files no record references, written over older_than ago."""
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        files = iter(self._blobs.files_written_before(cutoff))
        while not (stop is not None and stop.is_set()):
            batch = list(islice(files, _SWEEP_BATCH))
            if not batch:
                break
            removed += self._sweep_batch(batch)
        return removed

    def _sweep_batch(self, batch: list[BlobFile]) -> int:
        """Delete the batch's temp files, and its originals that no record references."""
        temps = [Path(blob.path) for blob in batch if blob.sha256 is None]
        for path in temps:
            # Never referenced: a finished write renames its temp file away.
            path.unlink(missing_ok=True)
        digests = [blob.sha256 for blob in batch if blob.sha256 is not None]
        candidates = _unreferenced(self.connection(), digests)
        if not candidates:
            return len(temps)
        # An add writes its original before taking the write lock, then, holding it, checks
        # that the original is still there and inserts the record: checking again under the
        # lock means an original is never deleted once its record exists or is being written.
        with self.write() as connection:
            orphans = _unreferenced(connection, candidates)
            for digest in orphans:
                self._blobs.delete(digest)
        return len(temps) + len(orphans)

    def stats(self) -> CatalogStats:
        """Counts by format and orientation, and the width and height ranges."""
        connection = self.connection()
        connection.execute("BEGIN")  # one snapshot for both reads
        try:
            # Separate subqueries so each min/max is one index lookup, not a scan.
            ranges = connection.execute(
                "SELECT (SELECT min(width) FROM images) AS min_width, "
                "(SELECT max(width) FROM images) AS max_width, "
                "(SELECT min(height) FROM images) AS min_height, "
                "(SELECT max(height) FROM images) AS max_height"
            ).fetchone()
            counts = connection.execute("SELECT facet, value, count FROM image_counts").fetchall()
        finally:
            connection.execute("COMMIT")
        formats = dict.fromkeys(FORMATS, 0)
        orientations = dict.fromkeys(ORIENTATIONS, 0)
        for facet, value, count in counts:
            (formats if facet == "format" else orientations)[value] = count
        return CatalogStats(
            count=sum(formats.values()), formats=formats, orientations=orientations, **dict(ranges)
        )

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            connection.close()


def _unreferenced(connection: sqlite3.Connection, digests: Iterable[str]) -> list[str]:
    """The digests no record has, looked up in the sha256 index."""
    wanted = list(digests)
    if not wanted:
        return []
    rows = connection.execute(
        f"SELECT sha256 FROM images WHERE sha256 IN ({', '.join('?' * len(wanted))})", wanted
    )
    referenced = {row["sha256"] for row in rows}
    return [digest for digest in wanted if digest not in referenced]


def page_sql(query: ImageQuery) -> tuple[str, list[Any]]:
    """The ids of one page, in order (limit + 1 of them, to tell whether a next page exists)."""
    where, params = _filters(query)
    column = _SORT_COLUMNS[query.sort_field]
    direction = "DESC" if query.descending else "ASC"
    after = query.after()
    if after is not None:
        where.append(f"({column}, id) {'<' if query.descending else '>'} (?, ?)")
        params.extend([_sql_value(after), after.id])
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # Always walk the sort's own index: a page then costs its limit plus the rows the
    # filters skip, never a sort of every row in a range (the planner's choice for a
    # two-sided range on another column, which grows with the catalog).
    sql = (
        f"SELECT id FROM images INDEXED BY images_by_{column} {clause} "
        f"ORDER BY {column} {direction}, id {direction} LIMIT ?"
    )
    return sql, [*params, query.limit + 1]


def count_sql(query: CountQuery) -> tuple[str, list[Any]]:
    """Count the matches, stopping at limit + 1, inside the index the filters narrow most."""
    where, params = _filters(query)
    index = _count_index(query)
    if index == "images_by_format":
        # Naming every value of a facet the query leaves open turns the walk into one seek
        # per (format, orientation) pair, each bounded by the width range too.
        for column, values, chosen in (
            ("orientation", ORIENTATIONS, query.orientation),
            ("format", FORMATS, query.format),
        ):
            if not chosen:
                where.insert(0, f"{column} IN ({', '.join('?' for _ in values)})")
                params[:0] = values
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    indexed = f"INDEXED BY {index}" if index else ""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM images {indexed} {clause} LIMIT ?)"
    return sql, [*params, query.limit + 1]


def _count_index(query: CountQuery) -> str | None:
    """The index a count walks: format and orientation first, then a two-sided range.

    Every index carries the filtered columns, so a count reads the index alone; the part
    of it the filters bound is what the count costs. None leaves the choice to SQLite
    (no filter but the name: any covering index is a walk of it all).
    """
    if query.format or query.orientation is not None:
        return "images_by_format"
    bounds = query.bounds()
    two_sided = [column for column, (low, high) in bounds.items() if None not in (low, high)]
    one_sided = [column for column, (low, high) in bounds.items() if (low, high) != (None, None)]
    chosen = two_sided or one_sided
    return f"images_by_{chosen[0]}" if chosen else None


def _filters(query: ImageFilters) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, (low, high) in query.bounds().items():
        for operator, value in ((">=", low), ("<=", high)):
            if value is not None:
                where.append(f"{column} {operator} ?")
                params.append(value)
    if query.format:
        where.append(f"format IN ({', '.join('?' for _ in query.format)})")
        params.extend(query.format)
    if query.orientation is not None:
        where.append("orientation = ?")
        params.append(query.orientation)
    if query.name is not None:
        # instr() on casefolded text: a literal, Unicode-aware substring match (no LIKE wildcards).
        where.append("instr(casefold(name), ?) > 0")
        params.append(query.name.casefold())
    return where, params


def _sql_value(position: CursorPosition) -> int | str:
    if isinstance(position.value, datetime):
        return _to_micros(position.value)
    return position.value
