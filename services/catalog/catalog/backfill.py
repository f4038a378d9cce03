"""Fill in the photo metadata of images stored before it existed: python -m catalog.backfill.

Reads each such image's original and computes what ingest now computes (EXIF date, camera,
lens, GPS, colour, pHash). Records are walked in (created, id) order and each is written as it
is done, so a run that stops is resumed by running again; a finished run finds nothing to do.
"""

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from catalog.config import Settings, get_settings
from catalog.errors import DarkroomError, ImageNotFound, StoreUnavailable
from catalog.ingest import kept_photo
from catalog.metadata import verified_metadata
from catalog.models import ImageRecord
from catalog.store import ImageStore, open_store

BATCH = 200


@dataclass
class BackfillCounts:
    """What one backfill run did; skipped maps an image id to the reason."""

    filled: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


def backfill(
    store: ImageStore, settings: Settings, *, batch: int = BATCH, progress: bool = True
) -> BackfillCounts:
    """Compute and store the photo metadata of every record that lacks it."""
    counts = BackfillCounts()
    after: tuple[datetime, str] | None = None
    with tqdm(desc="backfilling", unit="image", file=sys.stderr, disable=not progress) as bar:
        while records := store.lacking_photo(after, batch):
            for record in records:
                after = (record.created, record.id)
                reason = _fill(store, settings, record)
                if reason is None:
                    counts.filled += 1
                else:
                    counts.skipped[record.id] = reason
                    tqdm.write(f"skipped {record.id} ({record.name}): {reason}", file=sys.stderr)
                bar.update()
    return counts


def _fill(store: ImageStore, settings: Settings, record: ImageRecord) -> str | None:
    """Fill one record from its original; why it could not be, or None when it was."""
    try:
        data = store.content(record.id)
    except (ImageNotFound, FileNotFoundError):
        return "its original is missing"
    try:
        photo = verified_metadata(data, max_pixels=settings.max_pixels).photo
    except StoreUnavailable:
        raise
    except DarkroomError as exc:
        return exc.message
    assert photo is not None  # verified_metadata always reads it
    try:
        store.set_photo(record.id, kept_photo(photo, settings))
    except ImageNotFound:
        return "deleted while being filled"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with defaults from the CATALOG_* settings."""
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m catalog.backfill",
        description="Compute the photo metadata (date, camera, colour, pHash...) of stored "
        "images that lack it, from their originals.",
    )
    parser.add_argument("--store", default=settings.store, help="store URL (CATALOG_STORE)")
    parser.add_argument(
        "--blobs", type=Path, default=settings.blobs, help="blob folder (CATALOG_BLOBS)"
    )
    parser.add_argument(
        "--batch", type=int, default=BATCH, help=f"records read per query (default {BATCH})"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Backfill the store; 0 on success, 1 when the store is unreachable, 2 on a bad batch."""
    args = parse_args(argv)
    if args.batch < 1:
        print("error: --batch must be at least 1", file=sys.stderr)
        return 2
    settings = get_settings()
    store = open_store(args.store, args.blobs, duplicate_distance=settings.duplicate_distance)
    try:
        counts = backfill(store, settings, batch=args.batch)
    except StoreUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"filled {counts.filled}, skipped {len(counts.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
