"""Which files a run takes, the names their outputs get, and how outputs are written."""

import os
from pathlib import Path, PurePath

import pytest

from darkroom_batch.catalog import parse_query
from darkroom_batch.runner import Summary, write_atomically
from darkroom_batch.sources import (
    UsageError,
    catalog_input,
    check_distinct,
    file_inputs,
    output_format,
    sniff,
)
from tests.stack import SAMPLES

JPEG_HEAD = (SAMPLES / "rocket.jpg").read_bytes()[:16]
PNG_HEAD = (SAMPLES / "camera.png").read_bytes()[:16]


def test_sniff_knows_the_formats_by_their_first_bytes() -> None:
    assert sniff(JPEG_HEAD) == "jpeg"
    assert sniff(PNG_HEAD) == "png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"\x00\x00\x00\x1cftypavif") == "avif"
    assert sniff(b"\x00\x00\x00\x18ftypheic") == "heic"
    assert sniff(b"GIF89a") == "gif"
    assert sniff(b"# notes\n") is None


@pytest.mark.parametrize(
    ("requested", "pipeline", "source", "expected"),
    [("webp", "photo", "jpeg", "webp"), (None, "photo", "jpeg", "jpeg"),
     (None, "graphic", "jpeg", "png"), (None, "photo", "heic", "jpeg"),
     (None, "photo", "gif", "png"), (None, "photo", "avif", "avif")],
)  # fmt: skip
def test_output_format_is_the_processors_choice(
    requested: str | None, pipeline: str, source: str, expected: str
) -> None:
    assert output_format(requested, pipeline, source) == expected


def tree(root: Path) -> None:
    """photos/ with JPEGs, a PNG with no suffix, notes, a hidden file and an old output folder."""
    (root / "photos" / "2024" / "may").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(JPEG_HEAD)
    (root / "photos" / "2024" / "may" / "b.JPEG").write_bytes(JPEG_HEAD)
    (root / "photos" / "scan").write_bytes(PNG_HEAD)
    (root / "photos" / "notes.txt").write_text("not an image")
    (root / "photos" / ".hidden.jpg").write_bytes(JPEG_HEAD)
    (root / "photos" / "out").mkdir()
    (root / "photos" / "out" / "a.jpg").write_bytes(JPEG_HEAD)


def test_a_folder_gives_its_images_by_suffix_or_sniff_named_relative_to_it(tmp_path: Path) -> None:
    tree(tmp_path)
    found = file_inputs([tmp_path / "photos"], tmp_path / "photos" / "out", None, "photo")
    assert [(f.path.relative_to(tmp_path / "photos").as_posix(), f.output) for f in found] == [
        ("a.jpg", PurePath("a.jpg")),
        ("scan", PurePath("scan.png")),
        ("2024/may/b.JPEG", PurePath("2024/may/b.jpg")),
    ]


def test_a_named_file_is_taken_whatever_it_holds(tmp_path: Path) -> None:
    tree(tmp_path)
    notes = tmp_path / "photos" / "notes.txt"
    [item] = file_inputs([notes], tmp_path / "out", "webp", "photo")
    assert (item.path, item.output) == (notes, PurePath("notes.webp"))


def test_a_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or folder"):
        file_inputs([tmp_path / "nowhere"], tmp_path / "out", None, "photo")


def test_two_inputs_writing_one_output_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(JPEG_HEAD)
    (tmp_path / "a.png").write_bytes(PNG_HEAD)
    inputs = file_inputs([tmp_path], tmp_path / "out", "jpeg", "photo")
    with pytest.raises(UsageError, match=r"a\.png would both write a\.jpg"):
        check_distinct(inputs)
    check_distinct(file_inputs([tmp_path], tmp_path / "out", None, "photo"))


def test_a_catalog_image_is_named_by_its_stem_and_id() -> None:
    record = {"id": "0123456789abcdef0123", "name": "../holiday/beach.heic", "format": "heic"}
    item = catalog_input(record, None, "photo")
    assert item.output == PurePath("beach-0123456789abcdef0123.jpg")
    hidden = catalog_input({**record, "name": ".png"}, "webp", "photo")
    assert hidden.output == PurePath("png-0123456789abcdef0123.webp")
    nameless = catalog_input({**record, "name": "/"}, "webp", "photo")
    assert nameless.output == PurePath("image-0123456789abcdef0123.webp")


def test_query_text_becomes_pairs_and_paging_is_the_runs_own() -> None:
    assert parse_query("min_width=1920&orientation=landscape&format=png&format=jpeg") == [
        ("min_width", "1920"), ("orientation", "landscape"), ("format", "png"), ("format", "jpeg")
    ]  # fmt: skip
    with pytest.raises(UsageError, match="cursor"):
        parse_query("min_width=10&cursor=abc")


def test_write_atomically_leaves_only_the_finished_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.jpg"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["out.jpg"]


def test_a_failed_write_leaves_no_output_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jpg"
    target.mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        write_atomically(target, b"data")
    assert os.listdir(tmp_path) == ["out.jpg"] and target.is_dir()


def test_summary_names_each_failure_and_the_rate() -> None:
    summary = Summary(done=10, skipped=2, started=0.0, finished=4.0)
    summary.failures.append(("photos/bad.jpg", "415 unreadable_image: not an image"))
    assert summary.render() == (
        "done 10, skipped 2, failed 1 in 4.0 s (2.5 images/s)\n"
        "failed:\n"
        "  photos/bad.jpg: 415 unreadable_image: not an image"
    )
