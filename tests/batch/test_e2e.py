"""The batch command against real processor processes (and a real catalog for --query).

Each test runs ``python -m darkroom_batch`` as a child process over small JPEGs cut from
samples/, and checks what it wrote, what it printed, its exit status and, through each
processor's /metrics, where the work went.
"""

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePath

import httpx
import pytest
from PIL import Image

from tests.batch.cluster import (
    batch_command,
    make_photos,
    outputs,
    processors,
    run_batch,
)
from tests.metrics import processed_by
from tests.stack import ROOT, Service, free_port, running_stack

pytestmark = pytest.mark.e2e

PIPELINE = "grayscale|resize:width=120"
COUNT = 24
# Some 10 ms a job on a 400x400 photo: long enough to kill a processor with jobs in flight.
SLOW = "rotate:degrees=7,expand=false|low_pass:sigma=3|sharpen"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Service]]:
    with processors(tmp_path_factory.mktemp("processors"), 2) as services:
        yield services


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    make_photos(tmp_path / "photos", COUNT)
    (tmp_path / "photos" / "README.txt").write_text("not an image, left alone")
    return tmp_path / "photos"


def expected_outputs(folder: Path) -> list[PurePath]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*.jpg"))


def test_a_folder_is_spread_evenly_over_two_processors_and_mirrored(
    pair: list[Service], photos: Path, tmp_path: Path
) -> None:
    before = [processed_by(service.url) for service in pair]
    out = tmp_path / "out"
    result = run_batch(PIPELINE, photos, "--out", out, "--jobs", "4",
                       "--processor", pair[0].url, "--processor", pair[1].url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"done {COUNT}, skipped 0, failed 0" in result.stdout
    assert outputs(out) == expected_outputs(photos)
    for relative in outputs(out):
        with Image.open(out / relative) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "L", (120, 80))
    served = [
        processed_by(service.url) - count for service, count in zip(pair, before, strict=True)
    ]
    assert served == [COUNT // 2, COUNT // 2]


def test_a_rerun_skips_everything_and_force_redoes_it(
    pair: list[Service], photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    urls = f"{pair[0].url},{pair[1].url}"
    assert run_batch(PIPELINE, photos, "--out", out, "--processor", urls).returncode == 0
    first = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}
    before = sum(processed_by(service.url) for service in pair)

    rerun = run_batch(PIPELINE, photos, "--out", out, "--processor", urls)
    assert rerun.returncode == 0, rerun.stderr
    assert f"done 0, skipped {COUNT}, failed 0" in rerun.stdout
    assert sum(processed_by(service.url) for service in pair) == before
    assert {p: (out / p).stat().st_mtime_ns for p in outputs(out)} == first

    forced = run_batch(PIPELINE, photos, "--out", out, "--processor", urls, "--force",
                       "--format", "png")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert f"done {COUNT}, skipped 0, failed 0" in forced.stdout
    assert sum(processed_by(service.url) for service in pair) == before + COUNT
    pngs = sorted(p for p in outputs(out) if p.suffix == ".png")
    assert pngs == [p.with_suffix(".png") for p in expected_outputs(photos)]


def test_an_unreadable_file_fails_alone_with_exit_1_and_is_named(
    pair: list[Service], photos: Path, tmp_path: Path
) -> None:
    broken = photos / "deep" / "broken.jpg"
    broken.write_bytes((photos / "photo-00.jpg").read_bytes()[:300])
    out = tmp_path / "out"
    result = run_batch(PIPELINE, photos, "--out", out, "--processor", pair[0].url)
    assert result.returncode == 1, result.stderr
    assert f"done {COUNT}, skipped 0, failed 1" in result.stdout
    assert f"  {broken}: 415 unreadable_image:" in result.stdout
    assert not (out / "deep" / "broken.jpg").exists()
    assert len(outputs(out)) == COUNT


def test_single_files_keep_their_names(pair: list[Service], photos: Path, tmp_path: Path) -> None:
    files = [photos / "photo-00.jpg", photos / "deep" / "photo-01.jpg"]
    result = run_batch("invert", *files, "--out", tmp_path / "out", "--format", "webp",
                       "--quality", "70", "--processor", pair[1].url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path / "out") == [PurePath("photo-00.webp"), PurePath("photo-01.webp")]


def test_an_invalid_pipeline_is_a_usage_error_with_the_processors_message(
    pair: list[Service], photos: Path, tmp_path: Path
) -> None:
    result = run_batch("resize:width=0", photos, "--out", tmp_path / "out",
                       "--processor", pair[0].url)  # fmt: skip
    assert result.returncode == 2
    assert "invalid pipeline: 422 invalid_parameter: resize.width" in result.stderr
    assert not (tmp_path / "out").exists()


def test_no_processor_answering_is_a_usage_error(photos: Path, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = run_batch(PIPELINE, photos, "--out", tmp_path / "out", "--processor", nobody)
    assert result.returncode == 2
    assert f"no processor answered: {nobody}" in result.stderr


def test_a_processor_killed_mid_run_leaves_the_run_complete(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    count = 40
    make_photos(photos, count, size=(400, 400))
    out = tmp_path / "out"
    with processors(tmp_path, 2) as (survivor, victim):
        command = batch_command(
            SLOW, photos, "--out", out, "--jobs", "4",
            "--processor", survivor.url, "--processor", victim.url,
        )  # fmt: skip
        with subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as run:
            deadline = time.monotonic() + 30
            while len(outputs(out)) < 4 and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert run.poll() is None, "the run ended before the processor could be killed"
            assert victim.process is not None
            assert processed_by(victim.url) >= 1  # it had its turn before it died
            victim.process.send_signal(signal.SIGKILL)
            done_at_kill = len(outputs(out))
            stdout, stderr = run.communicate(timeout=60)
        assert done_at_kill < count
        assert run.returncode == 0, stdout + stderr
        assert f"done {count}, skipped 0, failed 0" in stdout
        assert outputs(out) == expected_outputs(photos)
        for relative in outputs(out):
            with Image.open(out / relative) as image:
                image.load()
                assert image.size == (400, 400)
        assert processed_by(survivor.url) >= count - done_at_kill
        assert victim.process.wait(timeout=5) == -signal.SIGKILL
    rerun = run_batch(SLOW, photos, "--out", out, "--processor", survivor.url)
    assert rerun.returncode == 2  # both processors are gone now: nothing to validate with


def test_a_catalog_query_processes_what_the_catalog_lists(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        listed = httpx.get(f"{stack.catalog.url}/v1/images",
                           params={"orientation": "landscape", "limit": 200}).json()  # fmt: skip
        expected = sorted(
            PurePath(f"{Path(item['name']).stem}-{item['id']}.jpg") for item in listed["items"]
        )
        assert len(expected) >= 2
        out = tmp_path / "out"
        args = (PIPELINE, "--query", "orientation=landscape", "--format", "jpeg", "--out", out,
                "--catalog", stack.catalog.url, "--processor", stack.processor.url)  # fmt: skip
        result = run_batch(*args)
        assert result.returncode == 0, result.stderr
        assert outputs(out) == expected
        for relative in expected:
            with Image.open(out / relative) as image:
                assert image.mode == "L" and image.width == 120 and image.height < 120
        rerun = run_batch(*args)
        assert f"done 0, skipped {len(expected)}, failed 0" in rerun.stdout

        bad = run_batch(
            PIPELINE, "--query", "orientation=sideways", "--out", out,
            "--catalog", stack.catalog.url, "--processor", stack.processor.url,
        )  # fmt: skip
        assert bad.returncode == 2
        assert "catalog rejected --query: 422" in bad.stderr

        stack.catalog.stop()
        down = run_batch(
            PIPELINE, "--query", "min_width=1", "--out", out,
            "--catalog", stack.catalog.url, "--processor", stack.processor.url,
        )  # fmt: skip
        assert down.returncode == 2
        assert f"catalog at {stack.catalog.url} unreachable" in down.stderr


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_rest(
    pair: list[Service], tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    count = 60
    make_photos(photos, count, size=(400, 400))
    out = tmp_path / "out"
    args = (SLOW, photos, "--out", out, "--jobs", "2", "--processor", pair[0].url)
    with subprocess.Popen(
        batch_command(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        deadline = time.monotonic() + 30
        while len(outputs(out)) < 5 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert run.poll() is None, "the run ended before it could be interrupted"
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=20)
    assert run.returncode == 130, stderr
    assert "interrupted; a rerun resumes where this one stopped" in stderr
    assert stdout.startswith("done ")
    finished = outputs(out)
    assert 5 <= len(finished) < count
    assert [p for p in out.rglob(".*")] == []  # no temporary left behind
    for relative in finished:
        with Image.open(out / relative) as image:
            image.load()  # every output there is whole

    rerun = run_batch(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert f"done {count - len(finished)}, skipped {len(finished)}, failed 0" in rerun.stdout
    assert outputs(out) == expected_outputs(photos)


def test_keys_come_from_the_environment_and_a_wrong_one_is_a_usage_error(
    tmp_path: Path,
) -> None:
    make_photos(tmp_path / "photos", 2)
    with processors(tmp_path, 1, {"PROCESSOR_API_KEYS": "right-key"}) as [locked]:
        args = (PIPELINE, tmp_path / "photos", "--out", tmp_path / "out")
        env = {"DARKROOM_PROCESSOR_URL": locked.url}
        keyed = run_batch(*args, env={**env, "DARKROOM_PROCESSOR_KEY": "right-key"})
        assert keyed.returncode == 0, keyed.stderr
        assert "done 2, skipped 0, failed 0" in keyed.stdout
        wrong = run_batch(*args, "--force", "--processor-key", "wrong-key", env=env)
        assert wrong.returncode == 2
        assert f"processor {locked.url} refused the key: 403 wrong_key" in wrong.stderr
