"""What a visitor waits for: gallery pages, cached and uncached renders, through the gateway.

    .venv/bin/python bench/gateway.py      # about two minutes; loopback only; not part of make test

The three services run as uvicorn processes on free loopback ports (tests/stack.py), the
gateway showing 50 images a page (GATEWAY_PAGE_SIZE=50), the catalog holding samples/ plus
60 distinct 1920x1080 JPEGs (quality 90) cut and turned from them. One keep-alive client
asks, one request at a time, for:

- the gallery page, warm: its 50 thumbnails already made (target p99 < 50 ms), and, for
  information, the page with all 50 thumbnails fetched over 6 connections, as a browser
  with an empty cache does (a browser that has been there keeps them for an hour);
- a render the gateway has cached (target p99 < 5 ms);
- a preview, ``<edit>|resize:width=640`` of a 1080p photo, each with another parameter
  value so nothing is cached (target p50 < 40 ms);
- a full-size render, uncached, through the gateway and straight from the processor with
  the same bytes and pipeline, interleaved in the same run (target: the gateway adds < 10 %
  to the p50).

Every figure is printed against its target; the exit status is 1 when one is missed. Each
loop is bounded by a request count and a time cap. Before each row the script waits (up to
a minute) for the CPUs to be at least 80 % idle and marks rows that started busy.
"""

# ruff: noqa: E402 - the service packages are importable only once sys.path is fixed below.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncio
import io
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from PIL import Image

from tests.stack import SAMPLES, Stack, running_stack

PHOTOS = 60
PAGE_SIZE = 50
RUNS = 300
UNCACHED_RUNS = 60
TIME_CAP_S = 60.0
PAGE_P99_MS = 50.0
CACHED_P99_MS = 5.0
PREVIEW_P50_MS = 40.0
OVERHEAD_MAX = 1.10
# A browser opens this many connections to one host.
BROWSER_CONNECTIONS = 6
WHOLE_PAGE_RUNS = 60


def make_photos(count: int) -> list[bytes]:
    """Distinct 1920x1080 JPEGs (quality 90), each cut and turned from a sample photo."""
    sources = [
        Image.open(p).convert("RGB")
        for p in sorted(SAMPLES.iterdir())
        if p.suffix in {".jpg", ".png"}
    ]
    rng = random.Random(11)
    photos = []
    for number in range(count):
        source = sources[number % len(sources)]
        turned = source.rotate(rng.uniform(-6, 6), resample=Image.Resampling.BILINEAR)
        width, height = turned.size
        left, top = rng.randint(0, width // 8), rng.randint(0, height // 8)
        crop = turned.crop((left, top, left + width * 3 // 4, top + height * 3 // 4))
        buffer = io.BytesIO()
        crop.resize((1920, 1080), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def upload(stack: Stack, photos: list[bytes]) -> list[str]:
    """Add the photos to the catalog; their ids, in order."""
    ids = []
    with httpx.Client(base_url=stack.catalog.url, timeout=60) as client:
        for number, data in enumerate(photos):
            response = client.post(
                "/v1/images", params={"name": f"bench-{number:02d}.jpg"}, content=data
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def idle_fraction(seconds: float = 1.0) -> float:
    """The fraction of CPU time the whole machine spent idle over ``seconds``."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(threshold: float = 0.8, cap_s: float = 60.0) -> bool:
    """Wait until other processes leave the CPUs ``threshold`` idle; False if they never do."""
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        if idle_fraction() >= threshold:
            return True
    return False


@dataclass
class Timing:
    """Latencies of one kind of request, in milliseconds."""

    ms: list[float]
    quiet: bool = True

    def quantile(self, q: float) -> float:
        """The q-quantile (0 < q < 1), interpolated."""
        return statistics.quantiles(self.ms, n=1000, method="inclusive")[round(q * 1000) - 1]

    @property
    def p50(self) -> float:
        """The median."""
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        """The 99th percentile."""
        return self.quantile(0.99)


def timed(call: Callable[[int], httpx.Response], runs: int, cap_s: float = TIME_CAP_S) -> Timing:
    """Call ``call(i)`` up to ``runs`` times (within ``cap_s``); each must answer 200."""
    quiet = wait_for_quiet()
    ms = []
    deadline = time.monotonic() + cap_s
    for number in range(runs):
        if time.monotonic() > deadline:
            break
        began = time.perf_counter()
        response = call(number)
        ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return Timing(ms, quiet)


def interleaved(
    first: Callable[[int], httpx.Response], second: Callable[[int], httpx.Response], runs: int
) -> tuple[Timing, Timing]:
    """Time two calls taking turns (so drift in the machine's load hits both alike)."""
    quiet = wait_for_quiet()
    times: tuple[list[float], list[float]] = ([], [])
    deadline = time.monotonic() + TIME_CAP_S
    for number in range(runs):
        if time.monotonic() > deadline:
            break
        order = (0, 1) if number % 2 else (1, 0)
        for which in order:
            call = (first, second)[which]
            began = time.perf_counter()
            response = call(number)
            times[which].append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return Timing(times[0], quiet), Timing(times[1], quiet)


@dataclass
class Row:
    """One printed figure against its target."""

    label: str
    figure: str
    target: str
    met: bool | None
    quiet: bool = True


def report(rows: list[Row]) -> bool:
    """Print the rows as a table; whether every target was met."""
    width = max(len(row.label) for row in rows)
    for row in rows:
        verdict = "" if row.met is None else ("met" if row.met else "MISSED")
        busy = "" if row.quiet else "  (CPUs were busy when this row started)"
        print(f"{row.label:<{width}}  {row.figure:<26} {row.target:<16} {verdict}{busy}")
    return all(row.met is not False for row in rows)


@dataclass
class Bench:
    """The running stack's gateway and processor clients, and the photo the renders use."""

    gateway: httpx.Client
    processor: httpx.Client
    catalog: httpx.Client
    photo: str
    photo_bytes: bytes

    def get(self, url: str, **params: str) -> httpx.Response:
        """A GET to the gateway."""
        return self.gateway.get(url, params=params)

    def renders(
        self, url: str, edit: Callable[[int], str], suffix: str = ""
    ) -> Callable[[int], httpx.Response]:
        """A call rendering request ``n``'s edit (then ``suffix``) through the gateway."""
        return lambda n: self.get(url, ops=edit(n) + suffix)

    def processes(self, edit: Callable[[int], str]) -> Callable[[int], httpx.Response]:
        """A call posting the photo's bytes straight to the processor with request ``n``'s edit."""
        return lambda n: self.processor.post(
            "/v1/process",
            params={"ops": edit(n)},
            content=self.photo_bytes,
            headers={"Content-Type": "image/jpeg"},
        )


# Edits a preview follows, each with a parameter that changes from one request to the next.
EDITS: dict[str, Callable[[int], str]] = {
    "contrast": lambda n: f"contrast:factor={1 + (n + 1) / 1000:.3f}",
    "brightness": lambda n: f"brightness:offset={n % 200 - 100 or 101}",
    "rotate": lambda n: f"rotate:degrees={(n % 3500 + 1) / 10:.1f}",
}


def measure(setup: Bench) -> list[Row]:
    """Every figure against its target."""
    rows: list[Row] = []
    thumbs = sorted(set(re.findall(r'src="(/images/[0-9a-f]+/thumb)"', setup.get("/").text)))
    for url in thumbs:  # warm: every thumbnail of the page made and cached
        setup.get(url).raise_for_status()
    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
        whole = timed(lambda _: whole_page(setup.gateway, pool, thumbs), WHOLE_PAGE_RUNS)
    rows.append(
        Row("thumbnails on the gallery page", str(len(thumbs)), f"= {PAGE_SIZE}",
            len(thumbs) == PAGE_SIZE)
    )  # fmt: skip

    gallery = timed(lambda _: setup.get("/"), RUNS)
    rows.append(
        Row("gallery page, warm: p50 / p99", f"{gallery.p50:.1f} / {gallery.p99:.1f} ms",
            f"p99 < {PAGE_P99_MS:g} ms", gallery.p99 < PAGE_P99_MS, gallery.quiet)
    )  # fmt: skip

    rows.append(
        Row(f"page + {len(thumbs)} cached thumbnails, {BROWSER_CONNECTIONS} connections: p50 / p99",
            f"{whole.p50:.1f} / {whole.p99:.1f} ms", "info", None, whole.quiet)
    )  # fmt: skip

    render = f"/images/{setup.photo}/render"
    setup.get(render, ops="grayscale", format="jpeg").raise_for_status()
    cached = timed(lambda _: setup.get(render, ops="grayscale", format="jpeg"), RUNS)
    rows.append(
        Row("cached render: p50 / p99", f"{cached.p50:.2f} / {cached.p99:.2f} ms",
            f"p99 < {CACHED_P99_MS:g} ms", cached.p99 < CACHED_P99_MS, cached.quiet)
    )  # fmt: skip

    for name, edit in EDITS.items():
        preview = timed(setup.renders(render, edit, "|resize:width=640"), UNCACHED_RUNS)
        rows.append(
            Row(f"1080p preview <{name}>|resize:width=640, uncached: p50 / p99",
                f"{preview.p50:.1f} / {preview.p99:.1f} ms", f"p50 < {PREVIEW_P50_MS:g} ms",
                preview.p50 < PREVIEW_P50_MS, preview.quiet)
        )  # fmt: skip

    for name, edit in EDITS.items():
        # Other parameter values than the previews', so the gateway has none of them cached.
        later = shifted(edit, 5100)
        through, direct = interleaved(
            setup.renders(render, later), setup.processes(later), UNCACHED_RUNS
        )
        ratio = through.p50 / direct.p50
        rows.append(
            Row(f"1080p <{name}>, uncached: gateway / processor p50",
                f"{through.p50:.1f} / {direct.p50:.1f} ms = {ratio:.3f}",
                f"< {OVERHEAD_MAX:.2f}", ratio < OVERHEAD_MAX, through.quiet)
        )  # fmt: skip
    return rows + hops(setup)


def hops(setup: Bench) -> list[Row]:
    """What an uncached render adds to the processor's work: each backend call it makes, alone.

    The last row is the least any gateway of this design can add: its own round trip, the
    catalog record it must read (a deleted photo is a 404, never a stale render), and the
    processor call made from an asyncio client as the gateway makes it, over the same call
    from this blocking client. Everything else the gateway does sits on top of that floor.
    """
    record = timed(lambda _: setup.catalog.get(f"/v1/images/{setup.photo}"), RUNS)
    original = timed(lambda _: setup.catalog.get(f"/v1/images/{setup.photo}/content"), RUNS)
    pipeline = timed(
        lambda n: setup.processor.get(
            "/v1/pipeline", params={"ops": f"invert|brightness:offset={n % 255}"}
        ),
        RUNS,
    )
    health = timed(lambda _: setup.get("/healthz"), RUNS)
    edit = shifted(EDITS["contrast"], 2500)  # the processor caches nothing: any values do
    loop = asyncio.new_event_loop()
    try:
        asynchronous = httpx.AsyncClient(base_url=str(setup.processor.base_url), timeout=30)

        def async_call(n: int) -> httpx.Response:
            return loop.run_until_complete(
                asynchronous.post(
                    "/v1/process",
                    params={"ops": edit(n)},
                    content=setup.photo_bytes,
                    headers={"Content-Type": "image/jpeg"},
                )
            )

        via_async, direct = interleaved(async_call, setup.processes(edit), UNCACHED_RUNS)
        loop.run_until_complete(asynchronous.aclose())
    finally:
        loop.close()
    floor = health.p50 + record.p50 + via_async.p50
    return [
        Row(f"  breakdown: {label} p50", f"{timing.p50:.2f} ms", "", None, timing.quiet)
        for label, timing in (
            ("catalog record (GET /v1/images/{id})", record),
            (f"catalog original ({len(setup.photo_bytes) // 1024} kB)", original),
            ("processor canonical pipeline (GET /v1/pipeline)", pipeline),
            ("gateway round trip alone (GET /healthz)", health),
            ("1080p <contrast> from an asyncio client", via_async),
            ("1080p <contrast> from a blocking client", direct),
        )
    ] + [
        Row("  floor: round trip + record + asyncio call, over blocking p50",
            f"{floor:.1f} / {direct.p50:.1f} ms = {floor / direct.p50:.3f}",
            "info", None, via_async.quiet)
    ]  # fmt: skip


def whole_page(client: httpx.Client, pool: ThreadPoolExecutor, thumbs: list[str]) -> httpx.Response:
    """The gallery page, then its thumbnails over several connections, as a browser loads it."""
    page = client.get("/")
    for answer in pool.map(client.get, thumbs):
        answer.raise_for_status()
    return page


def shifted(edit: Callable[[int], str], by: int) -> Callable[[int], str]:
    """The same edit with the parameter values it would take ``by`` requests later."""
    return lambda n: edit(n + by)


def main() -> int:
    """Run the stack, load it, measure, print; 0 when every target is met."""
    print(f"making {PHOTOS} distinct 1920x1080 JPEGs from samples/ ...", flush=True)
    photos = make_photos(PHOTOS)
    with (
        tempfile.TemporaryDirectory(prefix="darkroom-bench-gateway-") as workdir,
        running_stack(Path(workdir), {"gateway": {"GATEWAY_PAGE_SIZE": str(PAGE_SIZE)}}) as stack,
    ):
        ids = upload(stack, photos)
        with (
            httpx.Client(base_url=stack.gateway.url, timeout=30) as gateway,
            httpx.Client(base_url=stack.processor.url, timeout=30) as processor,
            httpx.Client(base_url=stack.catalog.url, timeout=30) as catalog,
        ):
            rows = measure(Bench(gateway, processor, catalog, ids[0], photos[0]))
    print(f"\ngateway bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{len(photos)} photos + samples/, one keep-alive client, loopback")  # fmt: skip
    return 0 if report(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
