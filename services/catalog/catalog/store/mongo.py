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
from catalog.fingerprint import (
    BAND_BITS,
    BANDS,
    band_keys,
    band_radius,
    bands,
    components,
    from_hex,
    hamming,
    neighbours,
)
from catalog.models import (
    DEFAULT_DUPLICATE_DISTANCE,
    FORMATS,
    MAX_CAMERAS,
    ORIENTATIONS,
    CameraCount,
    CatalogStats,
    CountQuery,
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
    # sort=taken and the taken range; every filtered field rides along.
    IndexModel(
        [
            ("taken", ASCENDING),
            ("_id", ASCENDING),
            *((f, ASCENDING) for f in (*_FILTERED, "camera", "colour", "has_location")),
        ],
        name="sort_taken",
    ),
    # An equality filter with the default order (created) seeks its value and walks in order.
    *(
        IndexModel(
            [(field, ASCENDING), ("created", ASCENDING), ("_id", ASCENDING)],
            name=f"{field}_created",
        )
        for field in ("camera", "colour", "has_location")
    ),
    # Multi-index hashing: one multikey entry per pHash band (catalog/fingerprint.py).
    IndexModel([("bands", ASCENDING)], name="bands"),
    # Only grouped images carry dup_group: a page of groups walks this index from its cursor.
    IndexModel(
        [("dup_group", ASCENDING), ("_id", ASCENDING)],
        name="dup_group",
        partialFilterExpression={"dup_group": {"$exists": True}},
    ),
]


class MongoImageStore:
    """Records in the `images` collection (_id is the image id), originals in GridFS."""

    def __init__(
        self,
        client: "MongoClient[Document]",
        database: str = DEFAULT_DATABASE,
        *,
        owns_client: bool = True,
        duplicate_distance: int = DEFAULT_DUPLICATE_DISTANCE,
    ) -> None:
        self._client = client
        self._duplicate_distance = duplicate_distance
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
    def from_url(
        cls, url: str, *, duplicate_distance: int = DEFAULT_DUPLICATE_DISTANCE
    ) -> "MongoImageStore":
        """Connect lazily to the server in a mongodb:// URL; the URL's path names the database."""
        options: dict[str, Any] = {"tz_aware": True}
        if "serverselectiontimeoutms" not in url.lower():
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
        client: MongoClient[Document] = MongoClient(url, **options)
        database = client.get_default_database(default=DEFAULT_DATABASE).name
        return cls(client, database, duplicate_distance=duplicate_distance)

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
                if record.phash is not None:
                    self._join_group(record.id, from_hex(record.phash))
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
            if len(documents) <= query.limit and query.undated_follow:
                more = query.limit + 1 - len(documents)
                documents += list(self.undated_cursor(query, more))
        items: list[ImagePublic] = [_record(d) for d in documents[: query.limit]]
        next_cursor = encode_cursor(query.sort, items[-1]) if len(documents) > query.limit else None
        return ImagePage(items=items, next_cursor=next_cursor)

    def page_cursor(self, query: ImageQuery) -> Cursor[Document]:
        """The page's documents in sort order, one extra to tell whether a next page exists.

        For sort=taken these are the dated images; undated_cursor gives the ones that follow.
        """
        after = query.after()
        if query.sort_field == "taken" and after is not None and after.value is None:
            return self.undated_cursor(query, query.limit + 1)
        direction = DESCENDING if query.descending else ASCENDING
        return (
            self._images.find(_filter(query))
            .sort([(query.sort_field, direction), ("_id", direction)])
            .limit(query.limit + 1)
        )

    def undated_cursor(self, query: ImageQuery, limit: int) -> Cursor[Document]:
        """The images without a date, which sort=taken lists after all dated ones, by id."""
        direction = DESCENDING if query.descending else ASCENDING
        clauses = [*_clauses(query), {"taken": None}]
        after = query.after()
        if after is not None and after.value is None:
            clauses.append({"_id": {"$lt" if query.descending else "$gt": after.id}})
        return (
            self._images.find({"$and": clauses})
            .sort([("taken", direction), ("_id", direction)])
            .limit(limit)
        )

    def cameras(self, limit: int = MAX_CAMERAS) -> list[CameraCount]:
        """The cameras with images, most used first (then by name).

        Unlike SQLite's kept counts, this groups every image with a camera (the $match on
        camera can use the camera_created index).
        """
        self._ensure_indexes()
        pipeline: list[Document] = [
            {"$match": {"camera": {"$type": "string"}}},
            {"$group": {"_id": "$camera", "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": limit},
        ]
        with self._available():
            groups = list(self._images.aggregate(pipeline))
        return [CameraCount(camera=g["_id"], count=g["count"]) for g in groups]

    def lacking_photo(self, after: tuple[datetime, str] | None, limit: int) -> list[ImageRecord]:
        """Records without PhotoMeta (colour unknown) in (created, id) order, after a position."""
        self._ensure_indexes()
        filter: Document = {"colour": None}
        if after is not None:
            created, image_id = after
            filter = {
                "$and": [
                    filter,
                    {"created": {"$gte": created}},
                    {
                        "$or": [
                            {"created": {"$gt": created}},
                            {"created": created, "_id": {"$gt": image_id}},
                        ]
                    },
                ]
            }
        with self._available():
            documents = (
                self._images.find(filter, {"blob": 0})
                .sort([("colour", ASCENDING), ("created", ASCENDING), ("_id", ASCENDING)])
                .limit(limit)
            )
            return [_record(document) for document in documents]

    def set_photo(self, image_id: str, photo: PhotoMeta) -> ImageRecord:
        """Fill a record's PhotoMeta fields (and index its pHash); ImageNotFound otherwise."""
        self._ensure_indexes()
        with self._available():
            document = self._images.find_one({"_id": image_id}, {"blob": 0})
            if document is None:
                raise ImageNotFound(image_id)
            before = _record(document)
            record = before.model_copy(update=photo.fields())
            fields = {key: to_document(record, None)[key] for key in (*photo.fields(), "taken")}
            if before.phash is None:
                fields.update(band_fields(record))
            self._images.update_one({"_id": image_id}, {"$set": fields})
            if before.phash is None and record.phash is not None:
                self._join_group(record.id, from_hex(record.phash))
        return record

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
            document = self._images.find_one_and_delete(
                {"_id": image_id}, {"blob": 1, "dup_group": 1}
            )
            if document is None:
                raise ImageNotFound(image_id)
            if document.get("dup_group") is not None:
                self._regroup(document["dup_group"])
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

    def similar(self, image_id: str, max_distance: int, limit: int) -> SimilarPage:
        """The images whose pHash is within max_distance of this one's, nearest first."""
        self._ensure_indexes()
        with self._available():
            document = self._images.find_one({"_id": image_id}, {"bands": 1})
            if document is None:
                raise ImageNotFound(image_id)
            if "bands" not in document:
                return SimilarPage(items=[])  # no pHash yet: nothing to compare with
            near = self._probe(_hash_of(document), max_distance)
            near.pop(image_id, None)
            chosen = sorted(near.items(), key=lambda item: (item[1], item[0]))[:limit]
            records = self._records_by_id([found for found, _ in chosen])
        return SimilarPage(
            items=[
                SimilarImage(image=records[found], distance=distance)
                for found, distance in chosen
                if found in records
            ]
        )

    def duplicate_groups(self, limit: int, cursor: str | None) -> DuplicatePage:
        """One page of duplicate groups in the order of their names, each largest first."""
        after = "" if cursor is None else decode_group_cursor(cursor)
        self._ensure_indexes()
        with self._available():
            members: dict[str, list[str]] = {}
            # Members in group order, read until one beyond the page's last group is seen.
            for document in self.group_cursor(after):
                name = document["dup_group"]
                if name not in members and len(members) == limit:
                    break
                members.setdefault(name, []).append(document["_id"])
            else:
                name = None
            records = self._records_by_id([i for ids in members.values() for i in ids])
        more = name is not None and name not in members
        return duplicate_page(members, records, list(members)[-1] if more else None)

    def group_cursor(self, after: str) -> Cursor[Document]:
        """The grouped images after the named group, in (group, id) order."""
        return (
            self._images.find(
                {"dup_group": {"$exists": True, "$gt": after}}, {"dup_group": 1, "_id": 1}
            )
            .sort([("dup_group", ASCENDING), ("_id", ASCENDING)])
            .hint("dup_group")
        )

    def probe_cursor(self, value: int, max_distance: int) -> Cursor[Document]:
        """The documents sharing a band within the probe radius of value's bands."""
        return self._images.find({"bands": {"$in": _probe_keys(value, max_distance)}}, {"bands": 1})

    def _probe(self, value: int, max_distance: int) -> dict[str, int]:
        """Every image whose pHash is within max_distance of value, with its distance."""
        found: dict[str, int] = {}
        for document in self.probe_cursor(value, max_distance):
            distance = hamming(value, _hash_of(document))
            if distance <= max_distance:
                found[document["_id"]] = distance
        return found

    def _records_by_id(self, ids: list[str]) -> dict[str, ImageRecord]:
        """The records with these ids (missing ones left out)."""
        if not ids:
            return {}
        return {
            document["_id"]: _record(document)
            for document in self._images.find({"_id": {"$in": ids}}, {"blob": 0})
        }

    def _first_image(self, ids: list[str]) -> str:
        """The id of the image a group lists first: most pixels, then lowest id."""
        first = (
            self._images.find({"_id": {"$in": ids}}, {"_id": 1})
            .sort([("pixels", DESCENDING), ("_id", ASCENDING)])
            .limit(1)
        )
        return str(next(iter(first))["_id"])

    def _label(self, ids: list[str], group: str | None) -> None:
        """Set the group of these images; only documents whose group changes are written."""
        if group is None:
            self._images.update_many(
                {"_id": {"$in": ids}, "dup_group": {"$exists": True}},
                {"$unset": {"dup_group": ""}},
            )
        else:
            self._images.update_many(
                {"_id": {"$in": ids}, "dup_group": {"$ne": group}}, {"$set": {"dup_group": group}}
            )

    def _join_group(self, image_id: str, value: int) -> None:
        """Merge the image and the groups of its near-duplicates into one group.

        Without a transaction, two near-duplicates added at the same moment may each miss
        the other; the next add or delete that touches either group joins them.
        """
        near = self._probe(value, self._duplicate_distance)
        near.pop(image_id, None)
        if not near:
            return
        ids = list(near)
        groups = self._images.distinct(
            "dup_group", {"_id": {"$in": ids}, "dup_group": {"$exists": True}}
        )
        members = {image_id, *ids}
        if groups:
            members.update(
                d["_id"] for d in self._images.find({"dup_group": {"$in": groups}}, {"_id": 1})
            )
        ordered = sorted(members)
        self._label(ordered, self._first_image(ordered))

    def _regroup(self, group: str) -> None:
        """Recompute one group's members into single-link groups (a delete may split it)."""
        remaining = {
            d["_id"]: _hash_of(d)
            for d in self._images.find({"dup_group": group}, {"bands": 1})
            if "bands" in d
        }
        for part in components(remaining, self._duplicate_distance):
            self._label(part, None if len(part) == 1 else self._first_image(part))

    def join_groups(self, ids: list[str]) -> None:
        """Join these stored images to the groups of their near-duplicates, as add does."""
        for document in self._images.find({"_id": {"$in": ids}, "bands": {"$exists": True}}):
            self._join_group(document["_id"], _hash_of(document))

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
    document["taken"] = record.taken  # taken_at's wall-clock part: what sort=taken orders by
    document.update(band_fields(record))
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


# Document fields that are the store's own bookkeeping, not the record's.
_STORE_ONLY = ("name_folded", "blob", "bands", "dup_group")


def _record(document: Document) -> ImageRecord:
    fields = {key: value for key, value in document.items() if key not in _STORE_ONLY}
    fields["id"] = fields.pop("_id")
    created = fields["created"]
    if isinstance(created, datetime):
        fields["created"] = _utc(created)
    return ImageRecord.model_validate(fields)


def _filter(query: ImageQuery) -> Document:
    clauses = _clauses(query)
    if query.sort_field == "taken":
        clauses.append({"taken": {"$gte": ""}})  # the dated ones: every taken is a string
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
    taken = {
        op: value
        for op, value in (("$gte", filters.taken_after), ("$lte", filters.taken_before))
        if value is not None
    }
    if taken:
        clauses.append({"taken": taken})
    for field in ("camera", "colour", "has_location"):
        value = getattr(filters, field)
        if value is not None:
            clauses.append({field: value})
    return clauses


def band_fields(record: ImageRecord) -> Document:
    """The record's pHash bands as `bands` (band * 65536 + value each), if it has a pHash."""
    if record.phash is None:
        return {}
    return {"bands": band_keys(from_hex(record.phash))}


def _hash_of(document: Document) -> int:
    """The pHash a document's four band keys spell."""
    value = 0
    for key in document["bands"]:
        band, part = divmod(int(key), 1 << BAND_BITS)
        value |= part << (BAND_BITS * (BANDS - 1 - band))
    return value


def _probe_keys(value: int, max_distance: int) -> list[int]:
    """Every band key within band_radius(max_distance) flips of the value's bands."""
    radius = band_radius(max_distance)
    return [
        band << BAND_BITS | near
        for band, part in enumerate(bands(value))
        for near in neighbours(part, radius)
    ]
