"""Import folders of images into the catalog: python -m catalog.importer DIR [DIR...]."""

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from catalog.config import Settings, get_settings
from catalog.errors import DarkroomError, StoreUnavailable
from catalog.ingest import ingest
from catalog.store import ImageStore, open_store


def walk(root: Path) -> Iterator[Path]:
    """Every regular file under root, sorted, skipping hidden files and folders."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file():
                yield path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with defaults from the CATALOG_* settings."""
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m catalog.importer",
        description="Import every image under the given folders into the catalog.",
    )
    parser.add_argument("--store", default=settings.store, help="store URL (CATALOG_STORE)")
    parser.add_argument(
        "--blobs", type=Path, default=settings.blobs, help="blob folder (CATALOG_BLOBS)"
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="folder to import")
    return parser.parse_args(argv)


def _import_file(store: ImageStore, path: Path, settings: Settings) -> bool | str:
    """Whether the file was stored (True) or already was (False), or why it was skipped."""
    try:
        size = path.stat().st_size
        if size > settings.max_body_bytes:
            return f"{size} bytes is over the limit of {settings.max_body_bytes}"
        data = path.read_bytes()
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        _, created = ingest(store, settings, data, path.name)
    except StoreUnavailable:
        raise  # no fault of this file: every other one would fail too
    except DarkroomError as exc:
        return exc.message
    return created


@dataclass
class ImportCounts:
    """What one import run did."""

    imported: int = 0
    duplicates: int = 0
    skipped: int = 0


def import_folders(store: ImageStore, dirs: list[Path], settings: Settings) -> ImportCounts:
    """Add every image under the folders to the store, saying why each other file is skipped."""
    files = [(root, path) for root in dirs for path in walk(root)]
    counts = ImportCounts()
    for root, path in tqdm(files, desc="importing", unit="file", file=sys.stderr):
        shown = path.relative_to(root).as_posix()
        outcome = _import_file(store, path, settings)
        if isinstance(outcome, str):
            counts.skipped += 1
            tqdm.write(f"skipped {shown}: {outcome}", file=sys.stderr)
        elif outcome:
            counts.imported += 1
        else:
            counts.duplicates += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    """Import the folders; 0 on success, 1 when the store is unreachable, 2 on a missing folder."""
    args = parse_args(argv)
    settings = get_settings()
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    store = open_store(args.store, args.blobs, duplicate_distance=settings.duplicate_distance)
    try:
        counts = import_folders(store, args.dirs, settings)
    except StoreUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"imported {counts.imported}, duplicates {counts.duplicates}, skipped {counts.skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
