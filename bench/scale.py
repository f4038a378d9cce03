"""Throughput of one processor process against two: batch CLI runs, and renders via the gateway.

    .venv/bin/python bench/scale.py      # 2-5 minutes; loopback only; not part of make test

300 distinct 1920x1080 JPEGs (quality 90, cut and turned from samples/ as bench/gateway.py
makes them) go through:

- ``darkroom-batch 'resize:width=1280|sharpen' --jobs 6 --force`` against one processor
  process, then against two (``--processor A --processor B``); every run must exit 0
  having done all 300;
- one gateway in front of a catalog holding 60 of them, its ``GATEWAY_PROCESSOR_URL``
  naming one processor, then two (``http://127.0.0.1:A,http://127.0.0.1:B``), with 8
  concurrent clients asking for 240 renders whose pipelines all differ
  (``resize:width=W|sharpen``, each run with widths no other run used) so the gateway has
  none of them cached. Each processor's ``/metrics`` says how many renders it made, so the
  table shows whether the gateway spread them.

Settings alternate, three rounds of each; the table shows each setting's best run (the one
other load on the machine disturbed least) and the other runs' rates, images (or renders)
per second, the two-over-one ratio, the processors' CPU time per image and how busy the
whole machine was during the run. Every loop is bounded by a count and a time cap; before
each run the script waits (up to a minute) for the CPUs to be at least 80 % idle and marks
runs that started busy.
"""

# ruff: noqa: E402 - the service packages are importable only once sys.path is fixed below.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx

from bench.gateway import make_photos, wait_for_quiet
from tests.metrics import processed_by
from tests.stack import HOST, Service, free_port, import_samples

PHOTOS = 300
PIPELINE = "resize:width=1280|sharpen"
JOBS = 6
ROUNDS = 3
BATCH_TIMEOUT_S = 300.0
GATEWAY_PHOTOS = 60
CLIENTS = 8
RENDERS = 240
RENDER_CAP_S = 60.0


@contextmanager
def started(services: list[Service]) -> Iterator[list[Service]]:
    """Start the services in order; stop them all on exit."""
    with ExitStack() as stack:
        for service in services:
            stack.callback(service.stop)
            service.start()
        yield services


@dataclass
class Figure:
    """A throughput: how many were done in how long, and whether the CPUs were quiet first.

    Also the CPU time the processors spent, and how busy the whole machine was meanwhile
    (every process on it, this script's and anyone else's).
    """

    count: int
    seconds: float
    quiet: bool
    processor_cpu_s: float = 0.0
    machine_busy: float = 0.0

    @property
    def rate(self) -> float:
        """Per second."""
        return self.count / self.seconds

    @property
    def cores(self) -> float:
        """How many cores the processors kept busy on average."""
        return self.processor_cpu_s / self.seconds

    @property
    def cpu_ms_each(self) -> float:
        """Processor CPU time per image, in milliseconds."""
        return self.processor_cpu_s / max(self.count, 1) * 1000


def cpu_s(service: Service) -> float:
    """CPU time (user + system) the service's process has used so far, in seconds."""
    assert service.process is not None
    fields = Path(f"/proc/{service.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_times() -> tuple[int, int]:
    """All and idle (with iowait) CPU ticks of the machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


@dataclass(frozen=True)
class Snapshot:
    """The processors' CPU time and the machine's CPU ticks at one moment."""

    processor_cpu_s: float
    total: int
    idle: int

    @classmethod
    def take(cls, processors: list[Service]) -> "Snapshot":
        """Now."""
        return cls(sum(cpu_s(p) for p in processors), *machine_times())

    def figure(self, processors: list[Service], count: int, seconds: float, quiet: bool) -> Figure:
        """The Figure of a measurement that began at this snapshot and ends now."""
        now = Snapshot.take(processors)
        busy = 1 - (now.idle - self.idle) / max(now.total - self.total, 1)
        return Figure(count, seconds, quiet, now.processor_cpu_s - self.processor_cpu_s, busy)


def batch_run(photos: Path, out: Path, processors: list[Service]) -> Figure:
    """Time one ``darkroom-batch --force`` over the photos; it must do every one of them."""
    quiet = wait_for_quiet()
    command = [sys.executable, "-m", "darkroom_batch", PIPELINE, str(photos), "--out", str(out),
               "--jobs", str(JOBS), "--force"]  # fmt: skip
    for processor in processors:
        command += ["--processor", processor.url]
    snapshot = Snapshot.take(processors)
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=BATCH_TIMEOUT_S)
    seconds = time.perf_counter() - began
    if result.returncode != 0 or f"done {PHOTOS}, skipped 0, failed 0" not in result.stdout:
        raise RuntimeError(
            f"batch run failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return snapshot.figure(processors, PHOTOS, seconds, quiet)


def batch_figures(workdir: Path, photos: Path) -> dict[int, list[Figure]]:
    """Every batch run with one and with two processors, in alternating rounds."""
    runs: dict[int, list[Figure]] = {1: [], 2: []}
    services = [Service("processor", free_port(), {}, workdir / f"processor-{n}.log")
                for n in range(2)]  # fmt: skip
    with started(services):
        for _ in range(ROUNDS):
            for count in (1, 2):
                runs[count].append(batch_run(photos, workdir / f"out-{count}", services[:count]))
    return runs


def upload(catalog: str, photos: list[bytes]) -> list[str]:
    """Add the photos to the catalog; their ids, in order."""
    ids = []
    with httpx.Client(base_url=catalog, timeout=60) as client:
        for number, data in enumerate(photos):
            response = client.post("/v1/images", params={"name": f"scale-{number:03d}.jpg"},
                                   content=data)  # fmt: skip
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def renders(gateway: str, ids: list[str], first_width: int, processors: list[Service]) -> Figure:
    """Up to RENDERS renders by CLIENTS concurrent clients, each pipeline new to the gateway."""
    quiet = wait_for_quiet()
    deadline = time.monotonic() + RENDER_CAP_S
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    def render(client: httpx.Client, number: int) -> bool:
        if time.monotonic() > deadline:
            return False
        width = first_width - number // len(ids)
        image = ids[number % len(ids)]
        response = client.get(f"/images/{image}/render",
                              params={"ops": f"resize:width={width}|sharpen"})  # fmt: skip
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
        return True

    with (
        httpx.Client(base_url=gateway, timeout=60, limits=limits) as client,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        snapshot = Snapshot.take(processors)
        began = time.perf_counter()
        done = sum(pool.map(lambda n: render(client, n), range(RENDERS)))
        seconds = time.perf_counter() - began
    return snapshot.figure(processors, done, seconds, quiet)


def gateway_figures(
    workdir: Path, photos: list[bytes]
) -> tuple[dict[int, list[Figure]], list[int]]:
    """Render throughput through a gateway naming one, then two processors, in rounds.

    Also how many of the two-processor runs' renders each processor made.
    """
    catalog_env = {"CATALOG_STORE": f"sqlite:///{workdir / 'catalog.db'}",
                   "CATALOG_BLOBS": str(workdir / "blobs")}  # fmt: skip
    import_samples(catalog_env)
    catalog = Service("catalog", free_port(), catalog_env, workdir / "catalog.log")
    processors = [Service("processor", free_port(), {}, workdir / f"gw-processor-{n}.log")
                  for n in range(2)]  # fmt: skip
    runs: dict[int, list[Figure]] = {1: [], 2: []}
    served = [0, 0]
    with started([catalog, *processors]):
        ids = upload(catalog.url, photos)
        for round_number in range(ROUNDS):
            for count in (1, 2):
                env = {
                    "GATEWAY_CATALOG_URL": catalog.url,
                    "GATEWAY_PROCESSOR_URL": ",".join(p.url for p in processors[:count]),
                    "GATEWAY_RETRY_AFTER_S": "1",
                }
                log = workdir / f"gateway-{count}.log"
                # Each run takes widths no earlier run asked for, so nothing is cached.
                first_width = 1280 - (2 * round_number + count) * (RENDERS // len(ids) + 1)
                with started([Service("gateway", free_port(), env, log)]) as [gateway]:
                    before = [processed_by(p.url) for p in processors]
                    runs[count].append(renders(gateway.url, ids, first_width, processors))
                    if count == 2:
                        for number, processor in enumerate(processors):
                            served[number] += processed_by(processor.url) - before[number]
    return runs, served


def report(
    batch: dict[int, list[Figure]], gateway: dict[int, list[Figure]], served: list[int]
) -> None:
    """Print the best run of each setting as a table, with the other runs' rates after it."""

    def usage(figure: Figure) -> str:
        busy = "" if figure.quiet else "  (CPUs were busy when this run started)"
        return (
            f"{figure.seconds:.1f} s, processors {figure.cpu_ms_each:.0f} ms CPU/image "
            f"on {figure.cores:.2f} cores, machine {figure.machine_busy:.0%} busy{busy}"
        )

    def best(runs: list[Figure]) -> Figure:
        return max(runs, key=lambda figure: figure.rate)

    def others(runs: list[Figure]) -> str:
        rest = sorted((f for f in runs if f is not best(runs)), key=lambda f: -f.rate)
        return "; other runs " + ", ".join(f"{f.rate:.1f}" for f in rest) if rest else ""

    rows = [
        (f"batch CLI, {PHOTOS} 1080p JPEGs, '{PIPELINE}', --jobs {JOBS}, best of {ROUNDS}",
         "", ""),
        *[(f"  {'one processor' if n == 1 else 'two processors'}",
           f"{best(batch[n]).rate:6.1f} images/s", usage(best(batch[n])) + others(batch[n]))
          for n in (1, 2)],
        ("  two / one", f"{best(batch[2]).rate / best(batch[1]).rate:6.2f}x", ""),
        (f"gateway renders, {CLIENTS} clients, every pipeline new (resize:width=W|sharpen), "
         f"best of {ROUNDS}", "", ""),
        *[(f"  GATEWAY_PROCESSOR_URL with {'one URL' if n == 1 else 'two URLs'}",
           f"{best(gateway[n]).rate:6.1f} renders/s",
           f"{best(gateway[n]).count} in {usage(best(gateway[n]))}{others(gateway[n])}")
          for n in (1, 2)],
        ("  two / one", f"{best(gateway[2]).rate / best(gateway[1]).rate:6.2f}x", ""),
        ("  renders made by each processor, two URLs", " / ".join(map(str, served)),
         "spread" if min(served) > 0 else "NOT spread: the second processor made none"),
    ]  # fmt: skip
    # Section headings (unindented, no figure) run on; the figures line up under them.
    width = max(len(label) for label, figure, _ in rows if figure)
    for label, figure, note in rows:
        print(f"{label:<{width}}  {figure:<18} {note}".rstrip() if figure else label)


def main() -> int:
    """Make the photos, measure both settings both ways, print the table."""
    print(f"making {PHOTOS} distinct 1920x1080 JPEGs from samples/ ...", flush=True)
    photos = make_photos(PHOTOS)
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-scale-") as tmp:
        workdir = Path(tmp)
        folder = workdir / "photos"
        folder.mkdir()
        for number, data in enumerate(photos):
            (folder / f"photo-{number:03d}.jpg").write_bytes(data)
        print("batch CLI: one processor, then two ...", flush=True)
        batch = batch_figures(workdir, folder)
        print("gateway: one processor URL, then two ...", flush=True)
        gateway, served = gateway_figures(workdir, photos[:GATEWAY_PHOTOS])
    print(f"\nscale bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, loopback {HOST}")  # fmt: skip
    report(batch, gateway, served)
    return 0


if __name__ == "__main__":
    sys.exit(main())
