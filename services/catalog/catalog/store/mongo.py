"""ImageStore on MongoDB (pymongo): records in one collection, originals in GridFS."""

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import gridfs
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from catalog.errors import ImageNotFound, StoreUnavailable
from catalog.models import (
    FORMATS,
    ORIENTATIONS,
    CatalogStats,
    CountQuery,
    ImageCount,
    ImageFilters,
    ImageMeta,
    ImagePage,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    encode_cursor,
)

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "darkroom"
COLLECTION = "images"
# A request should fail fast with a 503 rather than wait pymongo's default 30 s for a server.
SERVER_SELECTION_TIMEOUT_MS = 3000
_ADD_ATTEMPTS = 3
# GridFS files (or chunk sets) checked against the records per query of a sweep.
_SWEEP_BATCH = 500

Document = dict[str, Any]

_FILTERED = ("width", "height", "pixels", "format", "orientation")


def _sort_index(field: str) -> IndexModel:
    """The index of one sort order: (field, _id), then every filtered field.

    The filtered fields ride along so the index scan rejects rows without fetching their
    documents, as SQLite's sort indexes do.
    """
    extra = [(f, ASCENDING) for f in _FILTERED if f != field]
    return IndexModel([(field, ASCENDING), ("_id", ASCENDING), *extra], name=f"sort_{field}")


# _id is the image id (unique by construction). width+height and height+width serve a
# range on one dimension filtered by the other; format and orientation make stats counts.
INDEXES = [
    IndexModel([("sha256", ASCENDING)], name="sha256_unique", unique=True),
    *(_sort_index(field) for field in ("width", "height", "pixels", "created", "name")),
    IndexModel([("width", ASCENDING), ("height", ASCENDING)], name="width_height"),
    IndexModel([("height", ASCENDING), ("width", ASCENDING)], name="height_width"),
    IndexModel([("format", ASCENDING)], name="format"),
    IndexModel([("orientation", ASCENDING)], name="orientation"),
]


class MongoImageStore:
    """Records in the `images` collection (_id is the image id), originals in GridFS."""

    def __init__(
        self,
        client: "MongoClient[Document]",
        database: str = DEFAULT_DATABASE,
        *,
        owns_client: bool = True,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._db: Database[Document] = client[database]
        self._images = self._db[COLLECTION]
        self._files = gridfs.GridFS(self._db)
        self._ready = False
        self._ready_lock = threading.Lock()
        try:
            self._ensure_indexes()
        except StoreUnavailable as exc:
            # Start anyway: requests answer 503 until the server is back, then indexes are made.
            logger.warning("catalog store not ready: %s", exc.message)

    @classmethod
    def from_url(cls, url: str) -> "MongoImageStore":
        """Connect lazily to the server in a mongodb:// URL; the URL's path names the database."""
        options: dict[str, Any] = {"tz_aware": True}
        if "serverselectiontimeoutms" not in url.lower():
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
        client: MongoClient[Document] = MongoClient(url, **options)
        database = client.get_default_database(default=DEFAULT_DATABASE).name
        return cls(client, database)

    @contextmanager
    def _available(self) -> Iterator[None]:
        """Turn a lost or unreachable server into StoreUnavailable (a 503)."""
        try:
            yield
        except ConnectionFailure as exc:
            raise StoreUnavailable(
                f"the MongoDB server cannot be reached ({type(exc).__name__}); try again shortly"
            ) from exc

    def _ensure_indexes(self) -> None:
        """Create the indexes once per process; retried on every call until it succeeds."""
        if self._ready:
            return
        with self._ready_lock, self._available():
            if not self._ready:
                self._images.create_indexes(INDEXES)
                self._ready = True

    def _find(self, filter: Document) -> ImageRecord | None:
        document = self._images.find_one(filter)
        return None if document is None else _record(document)

    def add(self, meta: ImageMeta, name: str, data: bytes) -> tuple[ImageRecord, bool]:
        """Store an image once per sha256; returns (record, created)."""
        self._ensure_indexes()
        with self._available():
            for _ in range(_ADD_ATTEMPTS):
                existing = self._find({"sha256": meta.sha256})
                if existing is not None:
                    return existing, False
                record = ImageRecord.from_meta(meta, name=name)
                # Every writer stores its own GridFS copy; the unique indexes pick one record
                # and the others delete their copy, so one original survives per record.
                blob = self._files.put(data, metadata={"sha256": meta.sha256})
                try:
                    self._images.insert_one(to_document(record, blob))
                except DuplicateKeyError:
                    self._discard(blob)
                    continue  # the winner's record is found at the top of the loop
                except BaseException:
                    self._discard(blob)
                    raise
                return record, True
        raise RuntimeError(f"could not store or find the image {meta.sha256}")

    def _discard(self, blob: ObjectId) -> None:
        """Delete an original no record references; a failure only leaves an orphan file."""
        try:
            self._files.delete(blob)
        except PyMongoError:
            logger.warning("could not delete the unreferenced GridFS file %s", blob)

    def get(self, image_id: str) -> ImageRecord:
        """The record with this id; ImageNotFound otherwise."""
        self._ensure_indexes()
        with self._available():
            record = self._find({"_id": image_id})
        if record is None:
            raise ImageNotFound(image_id)
        return record

    def content(self, image_id: str) -> bytes:
        """The original bytes of the image; ImageNotFound otherwise."""
        self._ensure_indexes()
        with self._available():
            document = self._images.find_one({"_id": image_id}, {"blob": 1})
            if document is None or document.get("blob") is None:
                raise ImageNotFound(image_id)
            try:
                return bytes(self._files.get(document["blob"]).read())
            except gridfs.errors.NoFile:  # deleted between the two reads
                raise ImageNotFound(image_id) from None

    def query(self, query: ImageQuery) -> ImagePage:
        """One page of records matching the filters, in the query's sort order."""
        self._ensure_indexes()
        with self._available():
            documents = list(self.page_cursor(query))
        items: list[ImagePublic] = [_record(d) for d in documents[: query.limit]]
        next_cursor = encode_cursor(query.sort, items[-1]) if len(documents) > query.limit else None
        return ImagePage(items=items, next_cursor=next_cursor)

    def page_cursor(self, query: ImageQuery) -> Cursor[Document]:
        """The page's documents in sort order, one extra to tell whether a next page exists."""
        direction = DESCENDING if query.descending else ASCENDING
        return (
            self._images.find(_filter(query))
            .sort([(query.sort_field, direction), ("_id", direction)])
            .limit(query.limit + 1)
        )

    def count(self, query: CountQuery) -> ImageCount:
        """How many records match the filters, counted up to the query's limit."""
        self._ensure_indexes()
        with self._available():
            # The server picks the filters' index and stops at limit + 1.
            found = self._images.count_documents(_match(query), limit=query.limit + 1)
        return ImageCount.capped(found, query.limit)

    def delete(self, image_id: str) -> None:
        """Remove the record and its original; ImageNotFound otherwise."""
        self._ensure_indexes()
        with self._available():
            document = self._images.find_one_and_delete({"_id": image_id}, {"blob": 1})
            if document is None:
                raise ImageNotFound(image_id)
            # The record goes first: a crash in between leaves an orphan file, never a
            # record whose original is missing.
            if document.get("blob") is not None:
                self._files.delete(document["blob"])

    def sweep_orphans(self, older_than: timedelta, *, stop: threading.Event | None = None) -> int:
        """Delete GridFS files no record references, and chunks of files never finished.

        Every add stores a GridFS file of its own and then the record naming it, so an
        unreferenced file older than any upload can take is one a crash or a failed upload
        left behind; older_than must stay above that time (there is no lock to re-check
        under, as SQLite has).
        """
        self._ensure_indexes()
        cutoff = datetime.now(UTC) - older_than
        with self._available():
            return self._sweep_files(cutoff, stop) + self._sweep_chunks(cutoff, stop)

    def _sweep_files(self, cutoff: datetime, stop: threading.Event | None) -> int:
        """Delete the finished GridFS files uploaded by cutoff that no record references."""
        files = self._db["fs.files"]
        # An ObjectId starts with the second it was made, so walking _id below the cutoff
        # (a second wider; uploadDate decides) reads the _id index, never every file.
        bound = ObjectId.from_datetime(cutoff + timedelta(seconds=1))
        after: ObjectId | None = None
        removed = 0
        while not (stop is not None and stop.is_set()):
            ids: Document = {"$lt": bound} if after is None else {"$lt": bound, "$gt": after}
            batch = list(
                files.find({"_id": ids}, {"uploadDate": 1, "metadata.sha256": 1})
                .sort("_id", ASCENDING)
                .limit(_SWEEP_BATCH)
            )
            if not batch:
                break
            after = batch[-1]["_id"]
            stale = {
                document["_id"]: digest
                for document in batch
                if (digest := _stale_digest(document, cutoff)) is not None
            }
            # Looked up by sha256 (indexed); a record names the one copy it keeps.
            referenced = {
                record.get("blob")
                for record in self._images.find(
                    {"sha256": {"$in": sorted(set(stale.values()))}}, {"blob": 1}
                )
            }
            for blob in stale.keys() - referenced:
                self._files.delete(blob)
                removed += 1
        return removed

    def _sweep_chunks(self, cutoff: datetime, stop: threading.Event | None) -> int:
        """Delete the chunks of GridFS files begun before cutoff that never got their file."""
        chunks = self._db["fs.chunks"]
        files = self._db["fs.files"]
        # A chunk has no time of its own but its file's id, made when the upload began;
        # chunk 0 is written first, so one per file is found through the (files_id, n) index.
        bound = ObjectId.from_datetime(cutoff)
        after: ObjectId | None = None
        removed = 0
        while not (stop is not None and stop.is_set()):
            ids: Document = {"$lt": bound} if after is None else {"$lt": bound, "$gt": after}
            batch = [
                chunk["files_id"]
                for chunk in chunks.find({"files_id": ids, "n": 0}, {"files_id": 1})
                .sort("files_id", ASCENDING)
                .limit(_SWEEP_BATCH)
            ]
            if not batch:
                break
            after = batch[-1]
            present = {file["_id"] for file in files.find({"_id": {"$in": batch}}, {"_id": 1})}
            unfinished = [files_id for files_id in batch if files_id not in present]
            if unfinished:
                chunks.delete_many({"files_id": {"$in": unfinished}})
                removed += len(unfinished)
        return removed

    def stats(self) -> CatalogStats:
        """Counts by format and orientation, and the width and height ranges."""
        self._ensure_indexes()
        with self._available():
            # Index-only counts and first/last index keys: no scan of the collection.
            formats = {f: self._images.count_documents({"format": f}) for f in FORMATS}
            orientations = {
                o: self._images.count_documents({"orientation": o}) for o in ORIENTATIONS
            }
            ranges = {
                f"{end}_{field}": self._edge(field, ASCENDING if end == "min" else DESCENDING)
                for field in ("width", "height")
                for end in ("min", "max")
            }
        return CatalogStats(
            count=sum(formats.values()), formats=formats, orientations=orientations, **ranges
        )

    def _edge(self, field: str, direction: int) -> int | None:
        """The smallest (ASCENDING) or largest (DESCENDING) value of an indexed field."""
        cursor = self._images.find({}, {field: 1, "_id": 0}).sort(field, direction).limit(1)
        first = next(iter(cursor), None)
        return None if first is None else int(first[field])

    @property
    def database(self) -> Database[Document]:
        """The database holding the records and the GridFS bucket."""
        return self._db

    @property
    def database_name(self) -> str:
        """The name of the database holding the records and the GridFS bucket."""
        return self._db.name

    def close(self) -> None:
        """Close the client when this store opened it."""
        if self._owns_client:
            self._client.close()


def to_document(record: ImageRecord, blob: ObjectId | None) -> Document:
    """The record as its document in COLLECTION; blob is its GridFS original, if any."""
    fields = record.model_dump()
    document: Document = {"_id": fields.pop("id"), **fields}
    # Kept beside the name so the substring filter folds case exactly as SQLite's does.
    document["name_folded"] = record.name.casefold()
    document["blob"] = blob
    return document


def _stale_digest(file: Document, cutoff: datetime) -> str | None:
    """The sha256 of a GridFS file uploaded by cutoff; None if newer or not this store's."""
    metadata, uploaded = file.get("metadata"), file.get("uploadDate")
    digest = metadata.get("sha256") if isinstance(metadata, dict) else None
    # A file without a sha256 was not written by this store: it is left alone.
    if not isinstance(digest, str) or not isinstance(uploaded, datetime):
        return None
    return digest if _utc(uploaded) <= cutoff else None


def _utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime (a client without tz_aware returns naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _record(document: Document) -> ImageRecord:
    fields = {key: value for key, value in document.items() if key not in ("name_folded", "blob")}
    fields["id"] = fields.pop("_id")
    created = fields["created"]
    if isinstance(created, datetime):
        fields["created"] = _utc(created)
    return ImageRecord.model_validate(fields)


def _filter(query: ImageQuery) -> Document:
    clauses = _clauses(query)
    after = query.after()
    if after is not None:
        field = query.sort_field
        beyond = "$lt" if query.descending else "$gt"
        inclusive = "$lte" if query.descending else "$gte"
        clauses.append({field: {inclusive: after.value}})  # index bounds for the planner
        clauses.append(
            {
                "$or": [
                    {field: {beyond: after.value}},
                    {field: after.value, "_id": {beyond: after.id}},
                ]
            }
        )
    return {"$and": clauses} if clauses else {}


def _match(filters: ImageFilters) -> Document:
    """The filter document of the images the filters match."""
    clauses = _clauses(filters)
    return {"$and": clauses} if clauses else {}


def _clauses(filters: ImageFilters) -> list[Document]:
    """One clause per filter: dimension ranges (tightened), formats, orientation, name."""
    clauses: list[Document] = []
    for field, (low, high) in filters.bounds().items():
        bounds = {op: v for op, v in (("$gte", low), ("$lte", high)) if v is not None}
        if bounds:
            clauses.append({field: bounds})
    if filters.format:
        clauses.append({"format": {"$in": list(filters.format)}})
    if filters.orientation is not None:
        clauses.append({"orientation": filters.orientation})
    if filters.name is not None:
        # A literal substring: the text is escaped, and both sides are casefolded by Python.
        clauses.append({"name_folded": {"$regex": re.escape(filters.name.casefold())}})
    return clauses
