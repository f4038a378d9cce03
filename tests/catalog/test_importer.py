"""python -m catalog.importer: imports folders once, skips what it cannot keep, says why."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.config import Settings
from catalog.importer import ImportCounts, import_folders, main
from catalog.models import ImageQuery
from catalog.store import open_store
from tests.contract.mongomock_store import mongomock_store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))


def store_args(tmp_path: Path) -> list[str]:
    return ["--store", f"sqlite:///{tmp_path / 'catalog.db'}", "--blobs", str(tmp_path / "blobs")]


def stored_names(tmp_path: Path) -> list[str]:
    store = open_store(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "blobs")
    try:
        return sorted(r.name for r in store.query(ImageQuery(limit=200)).items)
    finally:
        store.close()


def test_imports_samples_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*store_args(tmp_path), str(SAMPLES)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "imported 8, duplicates 0, skipped 1"
    assert "skipped ATTRIBUTION.md: not an image" in err
    assert stored_names(tmp_path) == SAMPLE_NAMES

    assert main([*store_args(tmp_path), str(SAMPLES)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == "imported 0, duplicates 8, skipped 1"
    assert stored_names(tmp_path) == SAMPLE_NAMES
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 8


def test_walks_recursively_skipping_hidden_and_non_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    (photos / "trip" / "day1").mkdir(parents=True)
    (photos / ".cache").mkdir()
    shutil.copy(SAMPLES / "rocket.jpg", photos / "trip" / "day1" / "rocket.jpg")
    shutil.copy(SAMPLES / "camera.png", photos / "camera.png")
    shutil.copy(SAMPLES / "chelsea.png", photos / ".cache" / "chelsea.png")
    shutil.copy(SAMPLES / "coffee.png", photos / ".hidden.png")
    shutil.copy(SAMPLES / "rocket.jpg", photos / "trip" / "rocket-copy.jpg")
    (photos / "trip" / "notes.txt").write_text("not a photo\n")
    (photos / "empty.png").write_bytes(b"")

    assert main([*store_args(tmp_path), str(photos)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "imported 2, duplicates 1, skipped 2"
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        "skipped empty.png: empty image: zero bytes",
        "skipped trip/notes.txt: not an image"
        " (supported formats: jpeg, png, webp, gif, tiff, bmp, avif, heic)",
    ]
    # Files of a folder come before its subfolders, so the copy is the one kept.
    assert stored_names(tmp_path) == ["camera.png", "rocket-copy.jpg"]


def test_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main([*store_args(tmp_path), str(SAMPLES), str(missing)]) == 2
    _, err = capsys.readouterr()
    assert f"not a directory: {missing}" in err
    assert not (tmp_path / "catalog.db").exists()


def test_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "catalog.importer", *store_args(tmp_path), str(SAMPLES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 8, duplicates 0, skipped 1"
    assert "skipped ATTRIBUTION.md" in result.stderr
    assert "importing: 100%" in result.stderr  # the progress bar's final state
    assert "9/9" in result.stderr


def test_imports_into_the_mongo_store_once(capsys: pytest.CaptureFixture[str]) -> None:
    store, client = mongomock_store()
    settings = Settings()
    assert import_folders(store, [SAMPLES], settings) == ImportCounts(8, 0, 1)
    assert import_folders(store, [SAMPLES], settings) == ImportCounts(0, 8, 1)
    assert sorted(r.name for r in store.query(ImageQuery(limit=200)).items) == SAMPLE_NAMES
    assert client[store.database_name]["fs.files"].count_documents({}) == 8
    assert "skipped ATTRIBUTION.md: not an image" in capsys.readouterr().err


def test_unreachable_store_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "mongodb://127.0.0.1:9/darkroom?serverSelectionTimeoutMS=50"
    assert main(["--store", url, str(SAMPLES)]) == 1
    _, err = capsys.readouterr()
    assert "error: the MongoDB server cannot be reached" in err
