"""Ingest one image, for the upload route and the importer alike: read, verify, name, store once."""

from catalog.config import Settings
from catalog.metadata import verified_metadata
from catalog.models import ImageRecord, image_id
from catalog.names import clean_name
from catalog.store import ImageStore


def ingest(
    store: ImageStore, settings: Settings, data: bytes, name: str | None
) -> tuple[ImageRecord, bool]:
    """Read the header, prove the pixels decode, clean the name, store once; (record, created)."""
    meta = verified_metadata(data, max_pixels=settings.max_pixels)
    safe_name = clean_name(
        name,
        image_id=image_id(meta.sha256),
        format=meta.format,
        max_length=settings.max_name_length,
    )
    return store.add(meta, safe_name, data)
