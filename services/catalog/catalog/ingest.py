"""Ingest one image, for the upload route and the importer alike: read, verify, name, store once."""

import dataclasses

from catalog.config import Settings
from catalog.metadata import verified_metadata
from catalog.models import ImageMeta, ImageRecord, PhotoMeta, image_id
from catalog.names import clean_name
from catalog.store import ImageStore


def ingest(
    store: ImageStore, settings: Settings, data: bytes, name: str | None
) -> tuple[ImageRecord, bool]:
    """Read the header, prove the pixels decode, clean the name, store once; (record, created)."""
    meta = kept(verified_metadata(data, max_pixels=settings.max_pixels), settings)
    safe_name = clean_name(
        name,
        image_id=image_id(meta.sha256),
        format=meta.format,
        max_length=settings.max_name_length,
    )
    return store.add(meta, safe_name, data)


def kept(meta: ImageMeta, settings: Settings) -> ImageMeta:
    """The metadata as the catalog stores it: GPS coordinates dropped unless keep_gps is on."""
    if meta.photo is None:
        return meta
    return dataclasses.replace(meta, photo=kept_photo(meta.photo, settings))


def kept_photo(photo: PhotoMeta, settings: Settings) -> PhotoMeta:
    """The photo metadata without its coordinates unless keep_gps is on (has_location stays)."""
    if settings.keep_gps or photo.location is None:
        return photo
    return dataclasses.replace(photo, location=None)
