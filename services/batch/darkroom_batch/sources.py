"""What a run works on: image files found under the inputs, or catalog images, each with its output.

Output names are decided before anything is processed, so a rerun finds what is done:
a file keeps its path relative to the folder it was found in (or its own name when given
directly) with the output format's suffix; a catalog image is ``<name stem>-<id>`` with it.
The output format is the processor's choice made ahead: ``--format`` when given, PNG for
pipelines that draw graphics, else the input's format (JPEG for HEIC, PNG for formats the
processor does not write).
"""

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

IMAGE_SUFFIXES = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".png": "png", ".webp": "webp",
    ".gif": "gif", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp", ".avif": "avif",
    ".heic": "heic", ".heif": "heic",
}  # fmt: skip
OUTPUT_SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "avif": ".avif"}
# ISO BMFF brands (bytes 8-12 of the ftyp box) of the two HEIF-based formats.
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
SNIFF_BYTES = 16
UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class UsageError(Exception):
    """The command line cannot be run as given (exit status 2)."""


def sniff(head: bytes) -> str | None:
    """The image format the first bytes of a file announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[4:8] == b"ftyp":
        if head[8:12] in AVIF_BRANDS:
            return "avif"
        if head[8:12] in HEIC_BRANDS:
            return "heic"
    return None


def output_format(requested: str | None, pipeline_output: str, source_format: str) -> str:
    """The format the processor will write, as its ``/v1/process`` chooses it."""
    if requested is not None:
        return requested
    if pipeline_output == "graphic":
        return "png"
    if source_format in OUTPUT_SUFFIXES:
        return source_format
    return "jpeg" if source_format == "heic" else "png"


@dataclass(frozen=True, slots=True)
class FileInput:
    """An image file and where its result goes, relative to the output folder."""

    path: Path
    output: PurePath

    @property
    def label(self) -> str:
        """How the summary names it."""
        return str(self.path)


@dataclass(frozen=True, slots=True)
class CatalogInput:
    """A catalog image and where its result goes, relative to the output folder."""

    image_id: str
    name: str
    output: PurePath

    @property
    def label(self) -> str:
        """How the summary names it."""
        return f"catalog image {self.image_id} ({self.name})"


Input = FileInput | CatalogInput


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(SNIFF_BYTES)
    except OSError:
        return b""


def _walk(root: Path, skip: Path) -> Iterator[Path]:
    """Regular files under ``root``, sorted, leaving out hidden ones and the ``skip`` folder."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and path.is_file():
                yield path


def _source_format(path: Path) -> str | None:
    """The file's image format by its first bytes, else by its suffix; None: not an image."""
    return sniff(_head(path)) or IMAGE_SUFFIXES.get(path.suffix.lower())


def file_inputs(
    paths: Iterable[Path], out: Path, requested: str | None, pipeline_output: str
) -> list[FileInput]:
    """Every image named or found under a folder (recursively), with its output name.

    A file named on the command line is always taken (the processor judges it); in a
    folder, a file is taken when its suffix or its first bytes say it is an image.
    """
    skip = out.resolve()
    inputs: list[FileInput] = []
    for given in paths:
        if given.is_dir():
            for path in _walk(given, skip):
                found = _source_format(path)
                if found is not None:
                    relative = path.relative_to(given)
                    suffix = OUTPUT_SUFFIXES[output_format(requested, pipeline_output, found)]
                    inputs.append(FileInput(path, _with_suffix(relative, suffix)))
        elif given.is_file():
            found = _source_format(given) or "jpeg"
            suffix = OUTPUT_SUFFIXES[output_format(requested, pipeline_output, found)]
            inputs.append(FileInput(given, _with_suffix(PurePath(given.name), suffix)))
        else:
            raise UsageError(f"no such file or folder: {given}")
    return inputs


def _with_suffix(path: PurePath, suffix: str) -> PurePath:
    return path.with_suffix(suffix) if path.suffix else path.with_name(path.name + suffix)


def catalog_input(
    record: Mapping[str, object], requested: str | None, pipeline_output: str
) -> CatalogInput:
    """A catalog record as an input named ``<name stem>-<id><suffix>``."""
    image_id = str(record["id"])
    name = str(record.get("name") or "")
    stem = UNSAFE_NAME.sub("_", PurePosixPath(name.replace("\\", "/")).stem).lstrip(".")
    suffix = OUTPUT_SUFFIXES[output_format(requested, pipeline_output, str(record["format"]))]
    return CatalogInput(image_id, name, PurePath(f"{stem or 'image'}-{image_id}{suffix}"))


def check_distinct(inputs: Iterable[Input]) -> None:
    """UsageError when two inputs would write the same output."""
    seen: dict[PurePath, Input] = {}
    clashes: list[str] = []
    for item in inputs:
        other = seen.setdefault(item.output, item)
        if other is not item:
            clashes.append(f"{other.label} and {item.label} would both write {item.output}")
    if clashes:
        shown = "; ".join(clashes[:5]) + (
            f"; and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        )
        raise UsageError(f"outputs clash: {shown} (use --format, or separate runs)")
