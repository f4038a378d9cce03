"""Fault, hang, overload and soak cases against real processes; writes docs/reliability.md.

    .venv/bin/python bench/reliability.py            # about 5 minutes; loopback only
    RELIABILITY_SOAK_SECONDS=60 .venv/bin/python bench/reliability.py   # a shorter soak

Each case starts the services it needs as uvicorn processes on free loopback ports
(tests/stack.py), does what a bad day does to them, and records what was observed:

- crash: the catalog is killed with SIGKILL during 50 concurrent uploads and restarted;
  orphan blobs, dangling records, the earlier images and SQLite's integrity are checked;
- hang: the catalog, then the processor, is stopped with SIGSTOP; how long a page or a
  render takes to fail, with which status, and that it answers again after SIGCONT;
- overload: 24 clients post full-size 12 MP renders straight to one processor; the
  statuses, the Retry-After hints and the latencies;
- soak: 16 clients mix gallery pages, thumbnails and renders with varied parameters
  through the gateway for RELIABILITY_SOAK_SECONDS (default 180); statuses, p50/p99,
  and each service's resident memory at the start, through the run and at the peak.

Every load loop is bounded by a request count and a time cap. Exit status 1 when a case
misses its expectation (a 5xx other than 429/503/504, an orphan, a lost image...).
"""

# ruff: noqa: E402 - the service packages are importable only once sys.path is fixed below.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datetime
import os
import platform
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from bench.soak import (
    RSS_GROWTH_TARGET,
    make_photos,
    memory,
    mixed_soak,
    percentile,
    server_errors,
)
from tests.stack import HOST, Service, Stack, free_port, running_stack

SOAK_SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "180"))
OUTPUT = ROOT / "docs" / "reliability.md"
UPLOADS = 50
OVERLOAD_CLIENTS = 64
OVERLOAD_SECONDS = 20.0


@dataclass
class Case:
    """One case: what was done, what was observed, and what went wrong."""

    name: str
    done: str
    observed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- crash ------------------------------------------------------------------------------------


def catalog_service(workdir: Path, **settings: str) -> Service:
    """A catalog on SQLite under ``workdir`` (not started)."""
    env = {
        "CATALOG_STORE": f"sqlite:///{workdir / 'catalog.db'}",
        "CATALOG_BLOBS": str(workdir / "blobs"),
        **settings,
    }
    return Service("catalog", free_port(), env, workdir / "catalog.log")


def blob_files(workdir: Path) -> set[str]:
    """Every file under the blob folder (temporary files included), by name."""
    return {p.name for p in (workdir / "blobs").rglob("*") if p.is_file()}


def crash(workdir: Path, photos: list[bytes]) -> Case:
    """SIGKILL the catalog during concurrent uploads, restart it, and count what is left."""
    case = Case(
        "crash",
        f"5 images uploaded, then {UPLOADS} concurrent uploads of distinct 12 MP JPEGs; "
        "the catalog is killed with SIGKILL once a few have been answered, then restarted "
        "(its start-up sweep with a grace period of 0 s)",
    )
    workdir.mkdir(parents=True)
    service = catalog_service(workdir)
    service.start()
    earlier: dict[str, bytes] = {}
    answered = threading.Event()
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for number, data in enumerate(photos[:5]):
            response = client.post(
                "/v1/images", params={"name": f"early-{number}.jpg"}, content=data
            )
            earlier[response.json()["id"]] = data

        def upload(number: int) -> None:
            data = photos[5 + number % (len(photos) - 5)] + number.to_bytes(4, "big")
            try:
                response = httpx.post(
                    f"{service.url}/v1/images", params={"name": f"u{number}.jpg"},
                    content=data, timeout=60,
                )  # fmt: skip
                statuses[str(response.status_code)] += 1
                answered.set()
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(upload, n) for n in range(UPLOADS)]
            answered.wait(30)
            assert service.process is not None
            os.kill(service.process.pid, signal.SIGKILL)
            for future in futures:
                future.result()
    leftover = blob_files(workdir)
    restarted = catalog_service(workdir, CATALOG_ORPHAN_GRACE_S="0")
    restarted.port = service.port
    restarted.start()
    deadline = time.monotonic() + 15  # the start-up sweep runs beside the first requests
    while "orphan sweep" not in restarted.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            intact = sum(
                client.get(f"/v1/images/{image}/content").content == data
                for image, data in earlier.items()
            )
        with sqlite3.connect(workdir / "catalog.db") as connection:
            shas = {row[0] for row in connection.execute("SELECT sha256 FROM images")}
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        restarted.stop()
    blobs = blob_files(workdir)
    orphans, dangling = blobs - shas, shas - blobs
    answers = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    case.observed += [
        f"uploads during the kill: {answers}",
        f"files under the blob folder right after the kill: {len(leftover)} "
        f"(records before the kill: at least {len(earlier)})",
        f"after the restart: {len(shas)} records, {len(blobs)} blobs, "
        f"{len(orphans)} orphan blobs, {len(dangling)} dangling records",
        f"earlier images intact: {intact} of {len(earlier)}; PRAGMA integrity_check: {integrity}",
    ]
    if orphans or dangling or intact != len(earlier) or integrity != "ok":
        case.problems.append("orphans, dangling records, a lost image or a damaged database")
    return case


# --- hang -------------------------------------------------------------------------------------


def timed_get(client: httpx.Client, path: str, **params: str) -> tuple[int, float]:
    """The status of a GET and its duration in seconds."""
    started = time.monotonic()
    status = client.get(path, params=params).status_code
    return status, time.monotonic() - started


def hang(stack: Stack, image: str) -> Case:
    """SIGSTOP each backend in turn; how the gateway answers and how it recovers."""
    case = Case(
        "hang",
        "the catalog, then the processor, stopped with SIGSTOP (sockets open, no answer) "
        "while the gateway serves the gallery, an image page and an uncached render; "
        "default budgets: 3 s for metadata calls, 30 s for a render",
    )
    with httpx.Client(base_url=stack.gateway.url, timeout=60) as client:
        with stack.catalog.hung():
            status, seconds = timed_get(client, "/")
        after, _ = timed_get(client, "/")
        case.observed.append(
            f"catalog stopped: the gallery answered {status} in {seconds:.2f} s; "
            f"after SIGCONT: {after}"
        )
        if status != 504 or seconds > 4 or after != 200:
            case.problems.append("a stopped catalog was not a 504 within the 3 s budget")
        with stack.processor.hung():
            render, render_s = timed_get(
                client, f"/images/{image}/render", ops="rotate:degrees=17", format="png"
            )
            page, page_s = timed_get(client, f"/images/{image}")
        time.sleep(2.5)  # the gateway asks the processor again after 2 s
        recovered, _ = timed_get(client, f"/images/{image}/render", ops="rotate:degrees=17")
        case.observed.append(
            f"processor stopped: an uncached render answered {render} in {render_s:.2f} s; "
            f"the image page {page} in {page_s:.2f} s (original and metadata under a banner); "
            f"after SIGCONT the render answered {recovered}"
        )
        if render != 504 or page not in (503, 504) or recovered != 200:
            case.problems.append("a stopped processor was not a 504 within the budget")
    return case


# --- overload ---------------------------------------------------------------------------------


def overload(stack: Stack, photo: bytes) -> Case:
    """Many more full-size renders than job slots, straight to the processor."""
    case = Case(
        "overload",
        f"{OVERLOAD_CLIENTS} clients post full-size renders of a 12 MP JPEG "
        f"(rotate, blur, gradients) straight to one processor for {OVERLOAD_SECONDS:.0f} s "
        "(3 heavy job slots, 5 s queue timeout)",
    )
    statuses: Counter[int] = Counter()
    hints: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + OVERLOAD_SECONDS
    pipelines = ["rotate:degrees=21", "low_pass:sigma=3", "gradient_x", "sharpen:amount=2"]

    def client_loop(number: int) -> None:
        with httpx.Client(base_url=stack.processor.url, timeout=120) as client:
            for request in range(10_000):
                if time.monotonic() >= deadline:
                    return
                ops = pipelines[(number + request) % len(pipelines)]
                started = time.monotonic()
                response = client.post("/v1/process", params={"ops": ops}, content=photo)
                with lock:
                    statuses[response.status_code] += 1
                    latencies.append((time.monotonic() - started) * 1000)
                    if response.status_code == 429:
                        hints[response.headers.get("retry-after", "none")] += 1

    with ThreadPoolExecutor(OVERLOAD_CLIENTS) as pool:
        list(pool.map(client_loop, range(OVERLOAD_CLIENTS)))
    answers = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    case.observed += [
        f"answers: {answers}",
        "Retry-After on the 429s: "
        + (", ".join(f"{v} s: {n}" for v, n in sorted(hints.items())) or "none"),
        f"latency p50 {statistics.median(latencies):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms",
    ]
    if set(statuses) - {200, 429}:
        case.problems.append("answers other than 200 and 429 under overload")
    return case


# --- soak -------------------------------------------------------------------------------------


def soak(workdir: Path, photos: list[bytes]) -> Case:
    """The mixed soak through the gateway, with memory sampled every second."""
    case = Case(
        "soak",
        f"16 clients for {SOAK_SECONDS:.0f} s through the gateway, default settings: 20 % "
        "gallery pages (varied sorts and filters), 50 % thumbnails, 30 % full-size renders "
        "with varied pipelines and formats, over the samples and 40 distinct 12 MP photos",
    )
    tally, samples = mixed_soak(workdir, photos, SOAK_SECONDS)
    for kind, values in sorted(tally.latencies.items()):
        answers = ", ".join(
            f"{count} x {status}"
            for (k, status), count in sorted(tally.statuses.items())
            if k == kind
        )
        case.observed.append(
            f"{kind}: {len(values)} requests ({answers}); p50 {statistics.median(values):.1f} ms, "
            f"p99 {percentile(values, 99):.1f} ms"
        )
    for name, figures in memory(samples, SOAK_SECONDS).items():
        first, middle, last = figures.thirds
        case.observed.append(
            f"{name} resident memory: {figures.start:.0f} MiB at the start; median "
            f"{first:.0f} / {middle:.0f} / {last:.0f} MiB over each third; peak "
            f"{figures.peak:.0f} MiB; trend after warm-up {figures.trend:+.1%} "
            f"(flat: under {RSS_GROWTH_TARGET:.0%})"
        )
        if figures.trend >= RSS_GROWTH_TARGET:
            case.problems.append(f"{name} memory rose after warm-up")
    case.problems += server_errors(tally)
    return case


# --- the report -------------------------------------------------------------------------------


def report(cases: list[Case], started: datetime.datetime) -> str:
    """docs/reliability.md."""
    lines = [
        "# Reliability",
        "",
        "<!-- Generated by bench/reliability.py; do not edit. -->",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, three uvicorn processes on loopback "
        f"({HOST}); every load loop bounded in count and time.",
        "",
    ]
    for case in cases:
        verdict = (
            "as expected" if not case.problems else "**problems: " + "; ".join(case.problems) + "**"
        )
        lines += [f"## {case.name}", "", f"**Done:** {case.done}.", "", "**Observed:**", ""]
        lines += [f"- {line}" for line in case.observed]
        lines += ["", f"**Verdict:** {verdict}.", ""]
    return "\n".join(lines)


def main() -> int:
    """Run every case, write docs/reliability.md; 1 when a case went wrong."""
    started = datetime.datetime.now(datetime.UTC)
    print("making photos ...", flush=True)
    photos = make_photos(40)
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="darkroom-reliability-") as tmp:
        root = Path(tmp)
        cases.append(crash(root / "crash", photos))
        print("crash done", flush=True)
        (root / "stack").mkdir()
        with running_stack(root / "stack") as stack:
            with httpx.Client(base_url=stack.catalog.url, timeout=60) as catalog:
                image = catalog.get("/v1/images", params={"limit": "1"}).json()["items"][0]["id"]
            cases.append(hang(stack, image))
            print("hang done", flush=True)
            cases.append(overload(stack, photos[0]))
            print("overload done", flush=True)
        cases.append(soak(root / "soak", photos))
        print("soak done", flush=True)
    OUTPUT.write_text(report(cases, started), encoding="utf-8")
    print(OUTPUT.read_text())
    return 1 if any(case.problems for case in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
