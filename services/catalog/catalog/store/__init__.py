"""The ImageStore protocol every catalog backend implements, and open_store(url)."""

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from catalog.blobs import BlobStore
from catalog.models import (
    DEFAULT_DUPLICATE_DISTANCE,
    MAX_CAMERAS,
    CameraCount,
    CatalogStats,
    CountQuery,
    DuplicatePage,
    ImageCount,
    ImageMeta,
    ImagePage,
    ImageQuery,
    ImageRecord,
    PhotoMeta,
    SimilarPage,
)

__all__ = ["ImageStore", "open_store"]


class ImageStore(Protocol):
    """Image records plus their original bytes; safe to call from several threads."""

    def add(self, meta: ImageMeta, name: str, data: bytes) -> tuple[ImageRecord, bool]:
        """Store an image once per sha256; returns (record, created)."""
        ...

    def get(self, image_id: str) -> ImageRecord:
        """The record with this id; ImageNotFound otherwise."""
        ...

    def content(self, image_id: str) -> bytes:
        """The original bytes of the image; ImageNotFound otherwise."""
        ...

    def query(self, query: ImageQuery) -> ImagePage:
        """One page of records matching the filters, in the query's sort order."""
        ...

    def count(self, query: CountQuery) -> ImageCount:
        """How many records match the filters, counted in their indexes up to query.limit.

        Beyond the limit the count is the limit and ``exact`` is false, so a count costs at
        most limit + 1 index entries of the range it walks.
        """
        ...

    def delete(self, image_id: str) -> None:
        """Remove the record and its original; ImageNotFound otherwise."""
        ...

    def stats(self) -> CatalogStats:
        """Counts by format and orientation, and the width and height ranges."""
        ...

    def sweep_orphans(self, older_than: timedelta, *, stop: threading.Event | None = None) -> int:
        """Delete stored originals no record references, written over older_than ago.

        A crash between writing an original and its record leaves such files. The age keeps
        an upload's original safe until its record is written; setting ``stop`` ends a
        sweep after the batch in hand. Returns how many files were deleted.
        """
        ...

    def similar(self, image_id: str, max_distance: int, limit: int) -> SimilarPage:
        """Up to limit images whose pHash is within max_distance of this image's.

        Sorted by distance, then id, without the image itself; ImageNotFound for an unknown
        id, no items for an image without a pHash. Found through the band index (multi-index
        hashing), never a scan.
        """
        ...

    def duplicate_groups(self, limit: int, cursor: str | None) -> DuplicatePage:
        """One page of duplicate groups (single-link within the store's duplicate distance).

        Groups are kept as images are added and deleted, named after their first image and
        paged in the order of their names; each lists its images largest first.
        """
        ...

    def cameras(self, limit: int = MAX_CAMERAS) -> list[CameraCount]:
        """Up to limit cameras with images, most used first, then by name."""
        ...

    def lacking_photo(self, after: tuple[datetime, str] | None, limit: int) -> list[ImageRecord]:
        """Up to limit records without PhotoMeta, in (created, id) order after that position.

        A record lacks it when its colour is unknown: every image that decodes has one.
        """
        ...

    def set_photo(self, image_id: str, photo: PhotoMeta) -> ImageRecord:
        """Fill a record's PhotoMeta fields and index its pHash; ImageNotFound otherwise."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def open_store(
    url: str, blobs: Path, *, duplicate_distance: int = DEFAULT_DUPLICATE_DISTANCE
) -> ImageStore:
    """Open the store named by the URL; blobs is where file-backed stores keep originals.

    sqlite:///relative.db, sqlite:////absolute.db, or mongodb://host:port/database (the
    database defaults to "darkroom"; originals then live in its GridFS, not under blobs).
    duplicate_distance is the pHash distance within which added images join a group.
    """
    scheme, separator, rest = url.partition("://")
    if scheme == "sqlite" and separator:
        from catalog.store.sqlite import SqliteImageStore

        if not rest.startswith("/") or rest == "/":
            raise ValueError("sqlite store URL must look like sqlite:///path/to/catalog.db")
        # sqlite:///data/x.db is relative to the working directory; sqlite:////abs/x.db absolute.
        return SqliteImageStore(
            Path(rest[1:]), BlobStore(blobs), duplicate_distance=duplicate_distance
        )
    if scheme in ("mongodb", "mongodb+srv") and separator:
        try:
            from catalog.store.mongo import MongoImageStore
        except ImportError:
            raise ValueError(
                "the mongodb:// store needs pymongo: pip install 'darkroom-catalog[mongo]'"
            ) from None
        return MongoImageStore.from_url(url, duplicate_distance=duplicate_distance)
    # Never echo the URL: it may carry credentials.
    shown = scheme if separator else "(none)"
    raise ValueError(
        f"unknown store URL scheme {shown!r}; expected sqlite:///path.db or mongodb://host/db"
    )
