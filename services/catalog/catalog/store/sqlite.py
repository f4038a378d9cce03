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
from catalog.fingerprint import (
    band_radius,
    bands,
    components,
    from_hex,
    hamming,
    neighbours,
    to_signed,
    to_unsigned,
)
from catalog.models import (
    DEFAULT_DUPLICATE_DISTANCE,
    FORMATS,
    MAX_CAMERAS,
    ORIENTATIONS,
    CameraCount,
    CatalogStats,
    CountQuery,
    CursorPosition,
    DuplicatePage,
    ImageCount,
    ImageFilters,
    ImageMeta,
    ImagePage,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    PhotoMeta,
    SimilarImage,
    SimilarPage,
    decode_group_cursor,
    duplicate_page,
    encode_cursor,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUSY_TIMEOUT_MS = 30_000
_CACHE_KIB = 64 * 1024
_MMAP_BYTES = 1 << 30
# Files checked against the records per query of a sweep (well under SQLite's variable limit).
_SWEEP_BATCH = 500

# What EXIF and the reduced decode say (PhotoMeta), added to catalogs made before them by
# ALTER TABLE; NULL until known. taken is taken_at's wall-clock part, for filters and sorting;
# lat and lon are the location (NULL unless CATALOG_KEEP_GPS is on).
PHOTO_COLUMNS = (
    "taken_at", "taken", "camera_make", "camera_model", "camera", "lens", "has_location",
    "lat", "lon", "dominant_colour", "colour", "phash",
)  # fmt: skip
_PHOTO_TYPES = {"has_location": "INTEGER", "lat": "REAL", "lon": "REAL"}
PHOTO_SCHEMA = """
-- sort=taken and the taken range walk this one; the filtered columns ride along.
CREATE INDEX IF NOT EXISTS images_by_taken
    ON images (taken, id, width, height, pixels, format, orientation, camera, colour,
               has_location);
-- An equality filter with the default order (created) seeks its value and walks in order.
CREATE INDEX IF NOT EXISTS images_by_camera ON images (camera, created, id);
-- The default order with a wide taken range: the range is checked inside the index.
CREATE INDEX IF NOT EXISTS images_by_created_taken
    ON images (created, id, taken, width, height, pixels, format, orientation);
CREATE INDEX IF NOT EXISTS images_by_colour ON images (colour, created, id);
CREATE INDEX IF NOT EXISTS images_by_has_location ON images (has_location, created, id);

-- Images per camera, kept by triggers as image_counts is: GET /v1/cameras reads it alone.
CREATE TABLE IF NOT EXISTS camera_counts (
    camera TEXT PRIMARY KEY,
    count  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS images_camera_insert AFTER INSERT ON images
WHEN NEW.camera IS NOT NULL BEGIN
    INSERT INTO camera_counts (camera, count) VALUES (NEW.camera, 1)
    ON CONFLICT (camera) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS images_camera_delete AFTER DELETE ON images
WHEN OLD.camera IS NOT NULL BEGIN
    UPDATE camera_counts SET count = count - 1 WHERE camera = OLD.camera;
END;
CREATE TRIGGER IF NOT EXISTS images_camera_update AFTER UPDATE OF camera ON images
WHEN OLD.camera IS NOT NEW.camera BEGIN
    UPDATE camera_counts SET count = count - 1 WHERE camera = OLD.camera;
    INSERT INTO camera_counts (camera, count) SELECT NEW.camera, 1 WHERE NEW.camera IS NOT NULL
    ON CONFLICT (camera) DO UPDATE SET count = count + 1;
END;
"""

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
    "orientation", "bytes", "exif_orientation", "created", *PHOTO_COLUMNS,
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)
INSERT = f"INSERT INTO images ({_COLUMNS}) VALUES ({', '.join(f':{f}' for f in _FIELDS)})"
# Sort fields map to columns through this table only, so no query text reaches the SQL.
_SORT_COLUMNS = {f: f for f in ("width", "height", "pixels", "created", "name", "taken")}
# A taken range matching fewer images than this (with a sort other than taken) is read
# from images_by_taken and sorted: cheaper than walking a sort index past the others.
TAKEN_PROBE = 2000
# Equality filters with an index of their own, (value, created, id), most selective first.
_EQUALITY_INDEXES = ("camera", "colour", "has_location")


def _to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


def to_row(record: ImageRecord) -> dict[str, Any]:
    """The record as the named parameters of INSERT (created in microseconds since the epoch)."""
    row = {field: getattr(record, field) for field in _FIELDS if field not in ("lat", "lon")}
    row["created"] = _to_micros(record.created)
    location = record.location
    row["lat"], row["lon"] = (None, None) if location is None else (location.lat, location.lon)
    return row


def _record(row: sqlite3.Row) -> ImageRecord:
    fields = dict(row)
    fields["created"] = _from_micros(fields["created"])
    lat, lon = fields.pop("lat", None), fields.pop("lon", None)
    fields["location"] = None if lat is None or lon is None else {"lat": lat, "lon": lon}
    return ImageRecord.model_validate(fields)


def _add_photo_columns(connection: sqlite3.Connection) -> None:
    """Add the PhotoMeta columns a catalog made before them lacks."""
    present = {row["name"] for row in connection.execute("PRAGMA table_info(images)")}
    for column in PHOTO_COLUMNS:
        if column not in present:
            kind = _PHOTO_TYPES.get(column, "TEXT")
            connection.execute(f"ALTER TABLE images ADD COLUMN {column} {kind}")


class SqliteImageStore:
    """Records in one SQLite file, a connection per thread; originals in a BlobStore."""

    def __init__(
        self,
        path: Path,
        blobs: BlobStore,
        *,
        duplicate_distance: int = DEFAULT_DUPLICATE_DISTANCE,
    ) -> None:
        self._path = path
        self._duplicate_distance = duplicate_distance
        self._blobs = blobs
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = self.connection()
        connection.execute("PRAGMA journal_mode = WAL")
        with self.write() as writing:
            writing.execute(SCHEMA[: SCHEMA.index(";")])  # CREATE TABLE images, before its indexes
            _add_photo_columns(writing)
        connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} {SIMILARITY_SCHEMA} COMMIT;")
        connection.executescript(f"BEGIN IMMEDIATE; {PHOTO_SCHEMA} COMMIT;")

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
                _index_hash(connection, record, self._duplicate_distance)
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
        sql, params = self.page_plan(query)
        connection = self.connection()
        connection.execute("BEGIN")  # one snapshot for both reads
        try:
            # Order and filter inside the sort's index first, then read the page's rows:
            # a WITHOUT ROWID table would otherwise be searched for every row skipped.
            ids = [row["id"] for row in connection.execute(sql, params)]
            if len(ids) <= query.limit and query.undated_follow:
                sql, params = undated_sql(query, query.limit + 1 - len(ids))
                ids += [row["id"] for row in connection.execute(sql, params)]
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

    def page_plan(self, query: ImageQuery) -> tuple[str, list[Any]]:
        """page_sql for the query, told whether its taken range is narrow (a cheap probe)."""
        probe = taken_probe_sql(query)
        narrow = False
        if probe is not None:
            (found,) = self.connection().execute(*probe).fetchone()
            narrow = found < TAKEN_PROBE
        return page_sql(query, narrow_taken=narrow)

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
            _forget_hash(connection, image_id, self._duplicate_distance)
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

    def similar(self, image_id: str, max_distance: int, limit: int) -> SimilarPage:
        """The images whose pHash is within max_distance of this one's, nearest first."""
        connection = self.connection()
        connection.execute("BEGIN")  # one snapshot for every read
        try:
            row = connection.execute(
                "SELECT phash FROM image_hashes WHERE image_id = ?", (image_id,)
            ).fetchone()
            if row is None:
                if self._find("id", image_id) is None:
                    raise ImageNotFound(image_id)
                return SimilarPage(items=[])  # no pHash yet: nothing to compare with
            near = _probe(connection, to_unsigned(row["phash"]), max_distance)
            near.pop(image_id, None)
            chosen = sorted(near.items(), key=lambda item: (item[1], item[0]))[:limit]
            records = _records_by_id(connection, [found for found, _ in chosen])
        finally:
            connection.execute("COMMIT")
        return SimilarPage(
            items=[
                SimilarImage(image=records[found], distance=distance)
                for found, distance in chosen
                if found in records
            ]
        )

    def join_groups(self, ids: list[str]) -> None:
        """Join these stored images to the groups of their near-duplicates, as add does."""
        with self.write() as connection:
            for row in connection.execute(
                "SELECT image_id, phash FROM image_hashes "
                f"WHERE image_id IN ({_placeholders(ids)})",
                ids,
            ).fetchall():
                join_group(
                    connection, row["image_id"], to_unsigned(row["phash"]), self._duplicate_distance
                )

    def duplicate_groups(self, limit: int, cursor: str | None) -> DuplicatePage:
        """One page of duplicate groups in the order of their names, each largest first."""
        after = "" if cursor is None else decode_group_cursor(cursor)
        connection = self.connection()
        connection.execute("BEGIN")  # one snapshot for every read
        try:
            sql, params = group_page_sql(after, limit)
            names = [row["dup_group"] for row in connection.execute(sql, params)]
            page = names[:limit]
            members: dict[str, list[str]] = {name: [] for name in page}
            for row in connection.execute(
                "SELECT image_id, dup_group FROM image_hashes "
                f"WHERE dup_group IN ({_placeholders(page)})",
                page,
            ):
                members[row["dup_group"]].append(row["image_id"])
            records = _records_by_id(connection, [i for ids in members.values() for i in ids])
        finally:
            connection.execute("COMMIT")
        return duplicate_page(members, records, page[-1] if len(names) > limit else None)

    def cameras(self, limit: int = MAX_CAMERAS) -> list[CameraCount]:
        """The cameras with images, most used first (then by name), from the kept counts."""
        rows = self.connection().execute(
            "SELECT camera, count FROM camera_counts WHERE count > 0 "
            "ORDER BY count DESC, camera LIMIT ?",
            (limit,),
        )
        return [CameraCount(camera=row["camera"], count=row["count"]) for row in rows]

    def lacking_photo(self, after: tuple[datetime, str] | None, limit: int) -> list[ImageRecord]:
        """Records without PhotoMeta (colour unknown) in (created, id) order, after a position."""
        where, params = ["colour IS NULL"], []
        if after is not None:
            where.append("(created, id) > (?, ?)")
            params = [_to_micros(after[0]), after[1]]
        rows = self.connection().execute(
            f"SELECT {_COLUMNS} FROM images INDEXED BY images_by_colour "
            f"WHERE {' AND '.join(where)} ORDER BY created, id LIMIT ?",
            [*params, limit],
        )
        return [_record(row) for row in rows]

    def set_photo(self, image_id: str, photo: PhotoMeta) -> ImageRecord:
        """Fill a record's PhotoMeta fields (and index its pHash); ImageNotFound otherwise."""
        with self.write() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM images WHERE id = ?", (image_id,)
            ).fetchone()
            if row is None:
                raise ImageNotFound(image_id)
            before = _record(row)
            record = before.model_copy(update=photo.fields())
            values = {k: v for k, v in to_row(record).items() if k in PHOTO_COLUMNS}
            assignments = ", ".join(f"{column} = :{column}" for column in values)
            connection.execute(
                f"UPDATE images SET {assignments} WHERE id = :id", {**values, "id": image_id}
            )
            if before.phash is None:
                _index_hash(connection, record, self._duplicate_distance)
        return record

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


def undated_sql(query: ImageQuery, limit: int) -> tuple[str, list[Any]]:
    """Ids of the images without a date, which sort=taken lists after every dated one.

    In both directions they follow the dated images, in id order of the sort's direction,
    walked in images_by_taken where taken IS NULL.
    """
    where, params = _filters(query)
    where.append("taken IS NULL")
    direction = "DESC" if query.descending else "ASC"
    after = query.after()
    if after is not None and after.value is None:
        where.append(f"id {'<' if query.descending else '>'} ?")
        params.append(after.id)
    sql = (
        f"SELECT id FROM images INDEXED BY images_by_taken WHERE {' AND '.join(where)} "
        f"ORDER BY id {direction} LIMIT ?"
    )
    return sql, [*params, limit]


def taken_probe_sql(query: ImageQuery) -> tuple[str, list[Any]] | None:
    """Count the images in the query's taken range, up to TAKEN_PROBE.

    None without a range, or with sort=taken, whose own index serves the range.
    """
    if query.sort_field == "taken" or (query.taken_after is None and query.taken_before is None):
        return None
    where, params = [], []
    for clause, value in (("taken >= ?", query.taken_after), ("taken <= ?", query.taken_before)):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = (
        "SELECT count(*) FROM (SELECT 1 FROM images INDEXED BY images_by_taken "
        f"WHERE {' AND '.join(where)} LIMIT ?)"
    )
    return sql, [*params, TAKEN_PROBE]


def page_sql(query: ImageQuery, *, narrow_taken: bool = False) -> tuple[str, list[Any]]:
    """The ids of one page, in order (limit + 1 of them, to tell whether a next page exists).

    For sort=taken these are the dated images; undated_sql gives the ones that follow.
    narrow_taken (fewer than TAKEN_PROBE images in the taken range) reads the range from
    images_by_taken and sorts it, where walking the sort's index would pass most images.
    """
    after = query.after()
    if query.sort_field == "taken" and after is not None and after.value is None:
        return undated_sql(query, query.limit + 1)
    where, params = _filters(query)
    column = _SORT_COLUMNS[query.sort_field]
    direction = "DESC" if query.descending else "ASC"
    index = f"images_by_{column}"
    if column == "taken":
        where.append("taken IS NOT NULL")
    elif narrow_taken:
        index = "images_by_taken"
    elif column == "created":
        # An equality filter's own index holds its matches in created order: a seek, where
        # the sort's index would skip every other image.
        index = next((f"images_by_{c}" for c in _EQUALITY_INDEXES if _set(query, c)), index)
        if index == "images_by_created" and (query.taken_after or query.taken_before):
            index = "images_by_created_taken"  # a wide range: checked inside the index
    if after is not None:
        where.append(f"({column}, id) {'<' if query.descending else '>'} (?, ?)")
        params.extend([_sql_value(after), after.id])
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # Always walk the sort's own index: a page then costs its limit plus the rows the
    # filters skip, never a sort of every row in a range (the planner's choice for a
    # two-sided range on another column, which grows with the catalog).
    sql = (
        f"SELECT id FROM images INDEXED BY {index} {clause} "
        f"ORDER BY {column} {direction}, id {direction} LIMIT ?"
    )
    return sql, [*params, query.limit + 1]


def _set(filters: ImageFilters, field: str) -> bool:
    """Whether the filter on this field is given."""
    return getattr(filters, field) is not None


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
    """The index a count walks: an equality filter's, format's, taken's, or a range's.

    In that order: camera, colour or location; format and orientation; the taken range;
    then a two-sided range.
    The sort indexes carry the filtered columns, so a count reads the index alone; the part
    of it the filters bound is what the count costs (an equality index seeks its value and
    checks any other filter in the table). None leaves the choice to SQLite (no filter but
    the name: any covering index is a walk of it all).
    """
    equality = next((f"images_by_{c}" for c in _EQUALITY_INDEXES if _set(query, c)), None)
    if equality is not None:
        return equality
    if query.format or query.orientation is not None:
        return "images_by_format"
    if query.taken_after is not None or query.taken_before is not None:
        return "images_by_taken"
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
    equalities: tuple[tuple[str, str | bool | None], ...] = (
        ("taken >= ?", query.taken_after),
        ("taken <= ?", query.taken_before),
        ("camera = ?", query.camera),
        ("colour = ?", query.colour),
        ("has_location = ?", query.has_location),
    )
    for clause, given in equalities:
        if given is not None:
            where.append(clause)
            params.append(given)
    return where, params


def _sql_value(position: CursorPosition) -> int | str | None:
    if isinstance(position.value, datetime):
        return _to_micros(position.value)
    return position.value


# Near-duplicates: each image's pHash and duplicate group, and the 4 bands of every pHash
# (multi-index hashing, catalog/fingerprint.py). Images without a pHash have no rows here.
SIMILARITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS image_hashes (
    image_id  TEXT PRIMARY KEY,
    phash     INTEGER NOT NULL,  -- the unsigned 64-bit pHash stored as a signed int64
    dup_group TEXT               -- the id of the group's first image; NULL without a group
) WITHOUT ROWID;
-- Only grouped images: a page of groups walks this index from its cursor.
CREATE INDEX IF NOT EXISTS image_hashes_by_group
    ON image_hashes (dup_group, image_id) WHERE dup_group IS NOT NULL;
-- A probe seeks (band, value); the hash rides along, so candidates are verified in the index.
CREATE TABLE IF NOT EXISTS image_bands (
    band     INTEGER NOT NULL,
    value    INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    phash    INTEGER NOT NULL,
    PRIMARY KEY (band, value, image_id)
) WITHOUT ROWID;
"""
INSERT_HASH = "INSERT INTO image_hashes (image_id, phash) VALUES (?, ?)"
INSERT_BAND = "INSERT INTO image_bands (band, value, image_id, phash) VALUES (?, ?, ?, ?)"
PROBE_SQL = "SELECT image_id, phash FROM image_bands WHERE band = ? AND value IN ({values})"


def hash_rows(record: ImageRecord) -> tuple[tuple[str, int], list[tuple[int, int, str, int]]]:
    """The record's image_hashes row and its 4 image_bands rows; the record has a pHash."""
    assert record.phash is not None
    value = from_hex(record.phash)
    signed = to_signed(value)
    band_rows = [(band, part, record.id, signed) for band, part in enumerate(bands(value))]
    return (record.id, signed), band_rows


def _index_hash(connection: sqlite3.Connection, record: ImageRecord, distance: int) -> None:
    """Index a new record's pHash and join it to the groups of its near-duplicates."""
    if record.phash is None:
        return
    hash_row, band_rows = hash_rows(record)
    connection.execute(INSERT_HASH, hash_row)
    connection.executemany(INSERT_BAND, band_rows)
    join_group(connection, record.id, from_hex(record.phash), distance)


def _probe(connection: sqlite3.Connection, value: int, max_distance: int) -> dict[str, int]:
    """Every image whose pHash is within max_distance of value, with its distance."""
    radius = band_radius(max_distance)
    found: dict[str, int] = {}
    for band, part in enumerate(bands(value)):
        values = sorted(neighbours(part, radius))
        sql = PROBE_SQL.format(values=", ".join("?" * len(values)))
        for image_id, other in connection.execute(sql, [band, *values]):
            if image_id not in found:
                distance = hamming(value, to_unsigned(other))
                if distance <= max_distance:
                    found[image_id] = distance
    return found


def _placeholders(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)


def _first_image(connection: sqlite3.Connection, ids: list[str]) -> str:
    """The id of the image a group lists first: most pixels, then lowest id."""
    row = connection.execute(
        f"SELECT id FROM images WHERE id IN ({_placeholders(ids)}) "
        "ORDER BY pixels DESC, id LIMIT 1",
        ids,
    ).fetchone()
    return str(row["id"])


def _label(connection: sqlite3.Connection, ids: list[str], group: str | None) -> None:
    """Set the group of these images; only rows whose group changes are written."""
    connection.execute(
        f"UPDATE image_hashes SET dup_group = ? "
        f"WHERE image_id IN ({_placeholders(ids)}) AND dup_group IS NOT ?",
        [group, *ids, group],
    )


def join_group(connection: sqlite3.Connection, image_id: str, value: int, distance: int) -> None:
    """Merge the image and the groups of its near-duplicates into one group.

    The group is named after its first image, so only the members whose name changes are
    written: usually the smaller group, or none but the new image.
    """
    near = _probe(connection, value, distance)
    near.pop(image_id, None)
    if not near:
        return
    ids = list(near)
    groups = [
        row["dup_group"]
        for row in connection.execute(
            f"SELECT DISTINCT dup_group FROM image_hashes "
            f"WHERE image_id IN ({_placeholders(ids)}) AND dup_group IS NOT NULL",
            ids,
        )
    ]
    members = {image_id, *ids}
    if groups:
        members.update(
            row["image_id"]
            for row in connection.execute(
                f"SELECT image_id FROM image_hashes WHERE dup_group IN ({_placeholders(groups)})",
                groups,
            )
        )
    ordered = sorted(members)
    _label(connection, ordered, _first_image(connection, ordered))


def _forget_hash(connection: sqlite3.Connection, image_id: str, distance: int) -> None:
    """Drop a deleted image's pHash rows and split what remains of its group."""
    row = connection.execute(
        "DELETE FROM image_hashes WHERE image_id = ? RETURNING phash, dup_group", (image_id,)
    ).fetchone()
    if row is None:
        return
    value = to_unsigned(row["phash"])
    connection.executemany(
        "DELETE FROM image_bands WHERE band = ? AND value = ? AND image_id = ?",
        [(band, part, image_id) for band, part in enumerate(bands(value))],
    )
    if row["dup_group"] is not None:
        regroup(connection, row["dup_group"], distance)


def regroup(connection: sqlite3.Connection, group: str, distance: int) -> None:
    """Recompute one group's members into single-link groups (a delete may split it)."""
    remaining = {
        member["image_id"]: to_unsigned(member["phash"])
        for member in connection.execute(
            "SELECT image_id, phash FROM image_hashes WHERE dup_group = ?", (group,)
        )
    }
    for part in components(remaining, distance):
        _label(connection, part, None if len(part) == 1 else _first_image(connection, part))


def _records_by_id(connection: sqlite3.Connection, ids: list[str]) -> dict[str, ImageRecord]:
    """The records with these ids (missing ones left out)."""
    if not ids:
        return {}
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM images WHERE id IN ({_placeholders(ids)})", ids
    ).fetchall()
    return {row["id"]: _record(row) for row in rows}


def group_page_sql(after: str, limit: int) -> tuple[str, list[Any]]:
    """The names of one page of groups, in order (limit + 1, to tell whether more follow)."""
    sql = (
        "SELECT DISTINCT dup_group FROM image_hashes INDEXED BY image_hashes_by_group "
        "WHERE dup_group IS NOT NULL AND dup_group > ? ORDER BY dup_group LIMIT ?"
    )
    return sql, [after, limit + 1]
