"""Originals as content-addressed files: root/ab/cd/<sha256>."""

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class BlobFile:
    """A file under the blob root: an original (its sha256) or a temp file (sha256 None)."""

    path: str
    sha256: str | None


class BlobStore:
    """Files named by the SHA-256 of their content, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).is_file()

    def put(self, sha256: str, data: bytes) -> None:
        """Store the bytes under their digest: temp file, fsync, rename; a no-op if present."""
        target = self.path(sha256)
        if target.is_file():
            return
        try:
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        except FileNotFoundError:
            # Folders are made on first use only: a mkdir per upload costs more than it seems.
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        _fsync_dir(target.parent)

    def read(self, sha256: str) -> bytes:
        """The stored bytes; FileNotFoundError when absent."""
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        """Remove the blob if present."""
        self.path(sha256).unlink(missing_ok=True)

    def count(self) -> int:
        """How many blobs are stored (temp files excluded)."""
        if not self.root.is_dir():
            return 0
        return sum(1 for p in self.root.glob("*/*/*") if _SHA256.fullmatch(p.name))

    def files_written_before(self, cutoff: float) -> Iterator[BlobFile]:
        """Originals and temp files last written at or before cutoff (a Unix time), lazily.

        One folder is listed at a time, so a million originals never sit in memory at once;
        files this store did not name are left out.
        """
        for first_name, first in _subfolders(str(self.root)):
            for second_name, second in _subfolders(first):
                shard = first_name + second_name
                with os.scandir(second) as entries:
                    for entry in entries:
                        name = entry.name
                        if name.startswith(TEMP_PREFIX):
                            digest = None
                        elif name.startswith(shard) and _SHA256.fullmatch(name):
                            digest = name
                        else:
                            continue
                        if entry.is_file(follow_symlinks=False) and _mtime(entry) <= cutoff:
                            yield BlobFile(entry.path, digest)


def _subfolders(folder: str) -> Iterator[tuple[str, str]]:
    """(name, path) of the two-hex-digit shard folders directly under folder (none if missing)."""
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            if _SHARD.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                yield entry.name, entry.path


def _mtime(entry: os.DirEntry[str]) -> float:
    """When the file was last written; infinitely recent once it is gone, so it is skipped."""
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("inf")


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows cannot open directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
