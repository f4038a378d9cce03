"""Soak the whole stack: thumbnails while renders saturate the processor, and memory over time.

    .venv/bin/python bench/soak.py               # about 4 minutes; loopback only
    SOAK_SECONDS=180 .venv/bin/python bench/soak.py
    SOAK_PHASES=b .venv/bin/python bench/soak.py   # only the memory soak

The three services run as uvicorn processes on free loopback ports (tests/stack.py), the
catalog holding samples/ plus SOAK_PHOTOS (default 40) distinct 12 MP JPEGs made from them.

Phase A, thumbnails under render load: the gateway's result cache is switched off, so every
request reaches the processor. First 4 clients fetch thumbnails alone (the baseline); then 12
clients render full-size results with varied pipelines while 4 keep fetching thumbnails.
Target: thumbnail p99 < 150 ms while renders saturate the processor.

Phase B, memory: the gateway as configured by default (64 MiB result cache), 16 clients for
SOAK_SECONDS (default 90) mixing gallery pages, thumbnails and renders with varied
parameters; the resident memory of each service is sampled every second. Target: no 5xx
other than 429/503, and resident memory flat after warm-up: the first third of the run is
the warm-up, and the least-squares trend over the rest rises by less than 10 % of its mean
(the medians of each third are printed too).

Every load loop is bounded by a time cap and a request count; it stops by itself.
"""

# ruff: noqa: E402 - the service packages are importable only once sys.path is fixed below.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import io
import os
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from PIL import Image

from tests.stack import SAMPLES, Stack, running_stack

PHOTOS = int(os.environ.get("SOAK_PHOTOS", "40"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "90"))
PHASE_A_SECONDS = float(os.environ.get("SOAK_PHASE_A_SECONDS", "30"))
PHASES = os.environ.get("SOAK_PHASES", "a,b").split(",")
MAX_REQUESTS_PER_CLIENT = 100_000
THUMB_P99_TARGET_MS = 150.0
# "Flat after warm-up": no upward trend. A processor's memory swings with the size of the
# jobs it happens to run together (a 12 MP rotation holds several 36 MB arrays), so the
# trend line over the two thirds after warm-up may rise by at most this much.
RSS_GROWTH_TARGET = 0.10


def make_photos(count: int) -> list[bytes]:
    """Distinct 4000x3000 JPEGs (quality 90) cut and turned from the sample photos."""
    sources = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    rng = random.Random(7)
    photos = []
    for number in range(count):
        source = sources[number % len(sources)]
        turned = source.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR)
        width, height = turned.size
        left, top = rng.randint(0, width // 10), rng.randint(0, height // 10)
        crop = turned.crop((left, top, left + width * 8 // 10, top + height * 8 // 10))
        photo = crop.resize((4000, 3000), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def upload(stack: Stack, photos: list[bytes]) -> list[str]:
    """Add the photos to the catalog; every image id in it, samples included."""
    with httpx.Client(base_url=stack.catalog.url, timeout=60) as client:
        for number, data in enumerate(photos):
            response = client.post(
                "/v1/images", params={"name": f"soak-{number}.jpg"}, content=data
            )
            response.raise_for_status()
        ids: list[str] = []
        cursor = None
        while True:
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/images", params=params).json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids


def random_pipeline(rng: random.Random) -> tuple[str, str]:
    """A full-size render with varied parameters, and its output format."""
    choice = rng.randrange(6)
    if choice == 0:
        ops = f"rotate:degrees={rng.uniform(-45, 45):.1f}"
    elif choice == 1:
        ops = f"low_pass:sigma={rng.uniform(0.5, 4):.2f}"
    elif choice == 2:
        ops = f"gradient_{rng.choice('xy')}"
    elif choice == 3:
        ops = f"grayscale|contrast:factor={rng.uniform(0.5, 2):.2f}"
    elif choice == 4:
        ops = f"sharpen:amount={rng.uniform(0.2, 3):.2f}"
    else:
        ops = f"resize:width={rng.randint(800, 2400)}|invert"
    return ops, rng.choice(["jpeg", "jpeg", "png", "webp"])


@dataclass
class Tally:
    """Latencies by kind of request and status counts, shared by the client threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        with self.lock:
            self.latencies[kind].append(seconds * 1000)
            self.statuses[(kind, status)] += 1


Request = Callable[[httpx.Client, random.Random], tuple[str, httpx.Response]]


def run_clients(base_url: str, requests: list[Request], seconds: float, tally: Tally) -> None:
    """One thread per entry of ``requests``, each looping until the time cap or request cap."""
    deadline = time.monotonic() + seconds

    def loop(make: Request, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    kind, response = make(client, rng)
                except httpx.HTTPError:
                    tally.add("transport-error", 0, time.perf_counter() - started)
                    continue
                tally.add(kind, response.status_code, time.perf_counter() - started)

    threads = [threading.Thread(target=loop, args=(make, n)) for n, make in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(tally: Tally) -> list[str]:
    """One line per kind: count, p50 and p99, and statuses."""
    lines = []
    for kind, values in sorted(tally.latencies.items()):
        statuses = ", ".join(
            f"{status}: {count}"
            for (k, status), count in sorted(tally.statuses.items())
            if k == kind
        )
        lines.append(
            f"  {kind:<10} n={len(values):>6}  p50 {statistics.median(values):7.1f} ms"
            f"  p99 {percentile(values, 99):7.1f} ms   ({statuses})"
        )
    return lines


def requests_for(ids: list[str]) -> dict[str, Request]:
    """The kinds of request the soak mixes."""

    def thumb(client: httpx.Client, rng: random.Random) -> tuple[str, httpx.Response]:
        return "thumb", client.get(f"/images/{rng.choice(ids)}/thumb")

    def render(client: httpx.Client, rng: random.Random) -> tuple[str, httpx.Response]:
        ops, fmt = random_pipeline(rng)
        params = {"ops": ops, "format": fmt}
        return "render", client.get(f"/images/{rng.choice(ids)}/render", params=params)

    def gallery(client: httpx.Client, rng: random.Random) -> tuple[str, httpx.Response]:
        sort = rng.choice(["-created", "width", "-pixels", "name"])
        return "gallery", client.get("/", params={"sort": sort, "min_width": rng.randint(1, 700)})

    def mixed(client: httpx.Client, rng: random.Random) -> tuple[str, httpx.Response]:
        pick = rng.random()
        return (gallery if pick < 0.2 else thumb if pick < 0.7 else render)(client, rng)

    return {"thumb": thumb, "render": render, "gallery": gallery, "mixed": mixed}


def phase_a(workdir: Path, photos: list[bytes]) -> list[str]:
    """Thumbnails alone, then under render load, with no result cache; the missed targets."""
    workdir.mkdir(parents=True)
    with running_stack(workdir, {"gateway": {"GATEWAY_CACHE_MAX_ITEMS": "0"}}) as stack:
        kinds = requests_for(upload(stack, photos))
        alone = Tally()
        run_clients(stack.gateway.url, [kinds["thumb"]] * 4, PHASE_A_SECONDS / 3, alone)
        loaded = Tally()
        clients = [kinds["render"]] * 12 + [kinds["thumb"]] * 4
        run_clients(stack.gateway.url, clients, PHASE_A_SECONDS, loaded)
    print("\nPhase A: thumbnails alone (4 clients), no result cache")
    print("\n".join(summary(alone)))
    print("Phase A: 12 render clients + 4 thumbnail clients, no result cache")
    print("\n".join(summary(loaded)))
    thumb_p99 = percentile(loaded.latencies["thumb"], 99)
    base_p99 = percentile(alone.latencies["thumb"], 99)
    print(
        f"  thumbnail p99 under load / alone: {thumb_p99:.1f} / {base_p99:.1f} ms "
        f"= {thumb_p99 / base_p99:.2f}x; target p99 < {THUMB_P99_TARGET_MS:.0f} ms"
    )
    missed = []
    if thumb_p99 >= THUMB_P99_TARGET_MS:
        missed.append(f"thumbnail p99 {thumb_p99:.1f} ms under render load")
    return missed + server_errors(loaded)


def server_errors(tally: Tally) -> list[str]:
    """Statuses that must not happen: 5xx other than 503, and transport errors."""
    bad = {
        (kind, status): count
        for (kind, status), count in tally.statuses.items()
        if status == 0 or (status >= 500 and status != 503)
    }
    return [f"{count} x {kind} status {status}" for (kind, status), count in sorted(bad.items())]


Samples = list[tuple[float, dict[str, float]]]


def mixed_soak(workdir: Path, photos: list[bytes], seconds: float) -> tuple[Tally, Samples]:
    """16 mixed clients for ``seconds`` on a fresh stack, sampling resident memory each second."""
    samples: Samples = []
    workdir.mkdir(parents=True)
    with running_stack(workdir) as stack:
        kinds = requests_for(upload(stack, photos))
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not stop.wait(1.0):
                samples.append(
                    (time.monotonic() - started, {s.name: s.rss_mib() for s in stack.services()})
                )

        sampler = threading.Thread(target=sample)
        sampler.start()
        tally = Tally()
        try:
            run_clients(stack.gateway.url, [kinds["mixed"]] * 16, seconds, tally)
        finally:
            stop.set()
            sampler.join()
    return tally, samples


@dataclass(frozen=True)
class Memory:
    """One service's resident memory over a soak, in MiB."""

    start: float
    thirds: tuple[float, float, float]  # the median of each third of the run
    peak: float
    # The least-squares slope after warm-up, as growth over that stretch relative to its mean.
    trend: float

    @property
    def growth(self) -> float:
        """The last third over the middle one (the first third is the warm-up)."""
        return self.thirds[2] / self.thirds[1] - 1


def memory(samples: Samples, seconds: float) -> dict[str, Memory]:
    """Each service's memory figures from a soak's samples."""
    figures = {}
    for name in ("catalog", "processor", "gateway"):
        thirds = tuple(
            statistics.median(
                rss[name] for t, rss in samples if k * seconds / 3 <= t < (k + 1) * seconds / 3
            )
            for k in range(3)
        )
        after = [(t, rss[name]) for t, rss in samples if t >= seconds / 3]
        times = [t for t, _ in after]
        values = [v for _, v in after]
        slope = statistics.linear_regression(times, values).slope
        figures[name] = Memory(
            start=samples[0][1][name],
            thirds=(thirds[0], thirds[1], thirds[2]),
            peak=max(rss[name] for _, rss in samples),
            trend=slope * (times[-1] - times[0]) / statistics.mean(values),
        )
    return figures


def phase_b(workdir: Path, photos: list[bytes]) -> list[str]:
    """The mixed soak with default settings, sampling resident memory; the missed targets."""
    tally, samples = mixed_soak(workdir, photos, SECONDS)
    print(f"\nPhase B: 16 mixed clients for {SECONDS:.0f} s, default settings")
    print("\n".join(summary(tally)))
    missed = server_errors(tally)
    print("  resident memory (MiB): start, then the median of each third of the run, and the peak")
    for name, figures in memory(samples, SECONDS).items():
        first, middle, last = figures.thirds
        print(
            f"  {name:<10} {figures.start:7.1f} | {first:7.1f} {middle:7.1f} {last:7.1f} "
            f"| peak {figures.peak:7.1f}   trend after warm-up {figures.trend:+.1%}"
        )
        if figures.trend >= RSS_GROWTH_TARGET:
            missed.append(f"{name} resident memory rose {figures.trend:+.1%} after warm-up")
    return missed


def main() -> int:
    """Run both phases; 1 when a target is missed."""
    print(f"making {PHOTOS} 12 MP photos ...", flush=True)
    photos = make_photos(PHOTOS)
    with tempfile.TemporaryDirectory(prefix="darkroom-soak-") as tmp:
        missed = phase_a(Path(tmp) / "a", photos) if "a" in PHASES else []
        missed += phase_b(Path(tmp) / "b", photos) if "b" in PHASES else []
    print("\ntargets missed: " + ("; ".join(missed) if missed else "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
