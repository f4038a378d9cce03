"""Real processor processes and the batch command, for the batch CLI's end-to-end tests."""

import io
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from PIL import Image

from tests.stack import ROOT, SAMPLES, Service, free_port


@contextmanager
def processors(
    workdir: Path, count: int, env: dict[str, str] | None = None
) -> Iterator[list[Service]]:
    """``count`` processor processes on free loopback ports, stopped on exit."""
    with ExitStack() as stack:
        services = []
        for number in range(count):
            service = Service(
                "processor", free_port(), env or {}, workdir / f"processor-{number}.log"
            )
            stack.callback(service.stop)
            service.start()
            services.append(service)
        yield services


def make_photos(folder: Path, count: int, size: tuple[int, int] = (240, 160)) -> list[Path]:
    """``count`` distinct small JPEGs cut from the sample photos, half of them in a subfolder."""
    sources = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    rng = random.Random(7)
    paths = []
    for number in range(count):
        source = sources[number % len(sources)]
        left = rng.randint(0, source.width - size[0])
        top = rng.randint(0, source.height - size[1])
        crop = source.crop((left, top, left + size[0], top + size[1]))
        path = folder / ("deep" if number % 2 else "") / f"photo-{number:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=85)
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def batch_command(*args: str | Path) -> list[str]:
    """The argv of ``python -m darkroom_batch`` with these arguments."""
    return [sys.executable, "-m", "darkroom_batch", *map(str, args)]


def run_batch(
    *args: str | Path, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the batch command to the end (``env`` added to ours); its exit status and output."""
    return subprocess.run(
        batch_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def outputs(folder: Path) -> list[Path]:
    """Every finished output under ``folder``, relative to it, sorted (hidden temporaries aside)."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
