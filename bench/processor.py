"""Processor benchmark: the library limit, Darkroom in-process and over HTTP, thumbor, sharp.

Run from the repository root: ``.venv/bin/python bench/processor.py`` (a few minutes).

- photos: 1920x1080 and 3840x2160 JPEGs (quality 90) cut from a photo in Debian's
  plasma-workspace-wallpapers package (``apt-get download`` + ``dpkg-deb -x`` into
  bench/.cache/), or upscaled from samples/ when the package is unavailable;
- (a) limit: OpenCV decode (libjpeg's reduced-scale decode for a shrinking
  resize) + the single fastest library call + OpenCV encode, in this process
  (OpenCV's codecs are the fastest here: same libjpeg-turbo as Pillow, without
  Pillow's Python-level overhead);
- (b) Darkroom's own job function, the one the route runs in its thread pool;
- (c) a real uvicorn processor on a free 127.0.0.1 port, from a loopback client
  with persistent connections, concurrency 1 and 4;
- (d) thumbor 7.8.0 in its own venv under bench/.cache/, file loader over the
  same photos, on the operations it has, twice: (d) as shipped (progressive,
  Huffman-optimised JPEG) and (e) with ``PROGRESSIVE_JPEG = False`` (baseline,
  still Huffman-optimised: thumbor always passes ``optimize=True``);
- (f) sharp 0.35.5 (libvips, from npm into bench/.cache/sharp/) behind
  bench/peers/sharp_server.mjs, posted the same bytes as Darkroom right after (c) c=4 on
  each row, on both photos and every operation; output baseline JPEG, not
  Huffman-optimised, like Darkroom's; without node/npm or sharp the column says "—". It runs
  cores + 1 requests side by side (libuv's pool, ``UV_THREADPOOL_SIZE``), each on one
  libvips thread (``sharp.concurrency(1)``), as Darkroom runs cores + 1 single-threaded
  jobs, with libvips' operation cache off.

(a) and (b) run after ``tune_malloc()`` and with one OpenCV thread, the settings
the service gives itself at start, so in-process and HTTP figures share
conditions, and 2 x (a) is what two cores can do. The machine is shared: before
each row the script waits (up to a minute) for the CPUs to be at least 80 % idle,
and the table marks rows that started on a busy machine.
Darkroom's output is a baseline JPEG at quality 80, thumbor's default quality.
Every load loop has a request count and a time cap.
"""

import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# This script is bench/processor.py: drop its folder from the path so that
# ``processor`` means the service package, and import helpers as ``bench.*``.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench._processor_photos import cut_photos  # noqa: E402
from processor.allocator import tune_malloc  # noqa: E402
from processor.jobs import run_job  # noqa: E402
from processor.pipeline import parse_pipeline  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
QUALITY = 80
MAX_PIXELS = 50_000_000
PIPELINES = [
    "grayscale",
    "low_pass:sigma=3",
    "rotate:degrees=30",
    "gradient_x",
    "resize:width=960",
    "square_crop",
    "rotate:degrees=90",
]
# Darkroom pipeline -> thumbor URL path (before the image name).
THUMBOR = {
    "grayscale": "unsafe/filters:grayscale()",
    "low_pass:sigma=3": "unsafe/filters:blur(9,3)",
    "resize:width=960": "unsafe/960x0",
    "rotate:degrees=90": "unsafe/filters:rotate(90)",
}
# Darkroom pipeline -> the step bench/peers/sharp_server.mjs runs.
SHARP = {
    "grayscale": "grayscale",
    "low_pass:sigma=3": "blur:sigma=3",
    "rotate:degrees=30": "rotate:degrees=30",
    "gradient_x": "sobel_x",
    "resize:width=960": "resize:width=960",
    "square_crop": "square_crop",
    "rotate:degrees=90": "rotate:degrees=90",
}
SHARP_VERSION = "0.35.5"
SHARP_SERVER = ROOT / "bench" / "peers" / "sharp_server.mjs"
IN_PROCESS_RUNS = (40, 8.0)  # at most this many runs, or this many seconds
HTTP_RUNS = {1: (40, 8.0), 4: (120, 12.0)}  # concurrency -> (requests, seconds)


@dataclass
class Timing:
    """Latencies of one measurement, in seconds, and the wall time they took."""

    latencies: list[float]
    wall: float

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall


def idle_fraction(seconds: float = 1.0) -> float:
    """Return the fraction of CPU time the whole machine spent idle over ``seconds``."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(threshold: float = 0.8, cap: float = 60.0) -> bool:
    """Wait until other processes leave the CPUs ``threshold`` idle; False if they never do."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if idle_fraction() >= threshold:
            return True
    return False


def time_calls(call: Callable[[], object], runs: int, cap: float) -> Timing:
    """Call ``call`` up to ``runs`` times (after one warm-up) or until ``cap`` seconds pass."""
    call()
    latencies: list[float] = []
    start = time.perf_counter()
    while len(latencies) < runs and time.perf_counter() - start < cap:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return Timing(latencies, time.perf_counter() - start)


# --- (a) the limit -----------------------------------------------------------------------


def cv_decode(data: bytes, reduce: int = 1) -> np.ndarray:
    """Decode a colour JPEG to RGB, at 1/``reduce`` scale (libjpeg's scaled IDCT)."""
    flags = {
        1: cv2.IMREAD_COLOR_RGB,
        2: cv2.IMREAD_REDUCED_GRAYSCALE_2 | cv2.IMREAD_COLOR_RGB,
        4: cv2.IMREAD_REDUCED_GRAYSCALE_4 | cv2.IMREAD_COLOR_RGB,
        8: cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_COLOR_RGB,
    }
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags[reduce])
    assert pixels is not None
    return np.asarray(pixels, dtype=np.uint8)


def cv_encode(pixels: np.ndarray) -> bytes:
    """Encode L or RGB as baseline JPEG (OpenCV wants BGR)."""
    image = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    return bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1])


def limit_call(pipeline: str, data: bytes, width: int, height: int) -> Callable[[], bytes]:
    """Decode, the one fastest library call for ``pipeline``, encode."""
    if pipeline == "resize:width=960":
        size = (960, round(height * 960 / width))
        reduce = next(r for r in (8, 4, 2, 1) if width // 960 >= r and height // size[1] >= r)
        return lambda: cv_encode(
            cv2.resize(cv_decode(data, reduce), size, interpolation=cv2.INTER_AREA)
        )
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    ops: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "grayscale": lambda p: cv2.cvtColor(p, cv2.COLOR_RGB2GRAY),
        "low_pass:sigma=3": lambda p: cv2.GaussianBlur(p, (0, 0), 3),
        "rotate:degrees=30": lambda p: _warp30(p),
        "gradient_x": lambda p: cv2.convertScaleAbs(
            cv2.Sobel(p, cv2.CV_16S, 1, 0, ksize=3), alpha=1 / 8, beta=128
        ),
        "square_crop": lambda p: p[top : top + side, left : left + side],
        "rotate:degrees=90": lambda p: cv2.rotate(p, cv2.ROTATE_90_COUNTERCLOCKWISE),
    }
    op = ops[pipeline]
    return lambda: cv_encode(op(cv_decode(data)))


def _warp30(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 30, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(width * cos + height * sin) + 1, int(width * sin + height * cos) + 1)
    matrix[0, 2] += (size[0] - width) / 2
    matrix[1, 2] += (size[1] - height) / 2
    return cv2.warpAffine(pixels, matrix, size, flags=cv2.INTER_LINEAR)


# --- (b) Darkroom in-process ----------------------------------------------------------------


def darkroom_call(pipeline: str, data: bytes) -> Callable[[], object]:
    """The job function the /v1/process route runs: decode, run the pipeline, encode."""
    parsed = parse_pipeline(pipeline, max_steps=20)
    return lambda: run_job(data, parsed, fmt="jpeg", quality=QUALITY, max_pixels=MAX_PIXELS)


# --- servers and the HTTP client -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], cap: float) -> None:
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {cap} s")


@contextmanager
def server(command: list[str], port: int, health: str, env: dict[str, str]) -> Iterator[None]:
    """Run a server process for the duration of the block, then stop it."""
    log = (CACHE / f"server-{port}.log").open("wb")
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
    try:
        wait_until_up(port, health, process, cap=30)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def load(
    port: int, method: str, path: str, body: bytes | None, concurrency: int, runs: int, cap: float
) -> Timing:
    """Send ``runs`` requests over ``concurrency`` keep-alive connections, at most ``cap`` s."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    issued = 0
    start = time.perf_counter()

    def worker() -> None:
        nonlocal issued
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if issued >= runs or time.perf_counter() - start > cap:
                    break
                issued += 1
            t0 = time.perf_counter()
            connection.request(method, path, body=body)
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                if response.status != 200 or not payload.startswith(b"\xff\xd8"):
                    errors.append(f"{response.status} {payload[:120]!r}")
                latencies.append(elapsed)
        connection.close()

    # One warm-up request per connection's worth, outside the measurement.
    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    warm.request(method, path, body=body)
    warm.getresponse().read()
    warm.close()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return Timing(latencies, time.perf_counter() - start)


def thumbor_venv() -> Path | None:
    """Create (once) bench/.cache/thumbor-venv with thumbor 7.8.0; None if that fails."""
    venv = CACHE / "thumbor-venv"
    binary = venv / "bin" / "thumbor"
    if binary.exists():
        return binary
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "thumbor==7.8.0"],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"thumbor unavailable: {exc}")
        return None
    return binary


def sharp_modules() -> Path | None:
    """Install (once) sharp into bench/.cache/sharp/ with npm; None, saying why, if that fails."""
    prefix = CACHE / "sharp"
    if (prefix / "node_modules" / "sharp" / "package.json").exists():
        return prefix
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        print("sharp unavailable: node and npm are needed (node >= 20.9)")
        return None
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund"]
    try:
        subprocess.run(
            [*command, "--loglevel=error", f"sharp@{SHARP_VERSION}"],
            check=True,
            timeout=600,
            capture_output=True,
        )
        # Loads the native module and its libvips: a missing prebuilt binary fails here.
        subprocess.run(
            [node, "-e", "require(process.argv[1])", str(prefix / "node_modules" / "sharp")],
            check=True,
            timeout=60,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        lines = exc.stderr.decode(errors="replace").splitlines()
        said = [line for line in lines if line.strip() and "complete log" not in line]
        print(f"sharp unavailable: {said[-1] if said else exc}")
        return None
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"sharp unavailable: {exc}")
        return None
    return prefix


def thumbor_config(photos: Path, *, baseline: bool) -> Path:
    """Write a thumbor config: as shipped, or with baseline (not progressive) JPEG output."""
    name = "thumbor-baseline.conf" if baseline else "thumbor-defaults.conf"
    lines = [
        "LOADER = 'thumbor.loaders.file_loader'",
        f"FILE_LOADER_ROOT_PATH = {str(photos)!r}",
        "ALLOW_UNSAFE_URL = True",
        f"QUALITY = {QUALITY}",
        "RESULT_STORAGE = None",
        "STORAGE = 'thumbor.storages.no_storage'",
        "MAX_AGE = 0",
    ]
    if baseline:
        # Darkroom's kind of output: baseline JPEG. thumbor still Huffman-optimises it.
        lines.append("PROGRESSIVE_JPEG = False")
    config = CACHE / name
    config.write_text("\n".join(lines) + "\n")
    return config


# --- the run -------------------------------------------------------------------------------


def conditions() -> str:
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}); Python {sys.version.split()[0]}, "
        f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), Pillow {PIL.__version__}; "
        f"BLAS/OpenMP env: {blas or 'none set'}; output: baseline JPEG q{QUALITY}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    photos, source = cut_photos(CACHE)
    print(f"photos: {source}")
    # The allocator and OpenCV settings the service gives itself, for (a) and (b) too.
    tuned = tune_malloc()
    cv2.setNumThreads(1)
    print(f"conditions: {conditions()}; glibc malloc tuned in-process: {tuned}")
    service_env = {"PYTHONPATH": str(ROOT / "services" / "processor")}
    rows: list[dict[str, object]] = []
    darkroom_port = free_port()
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "processor.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(darkroom_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with server(uvicorn, darkroom_port, "/healthz", service_env), sharp_server() as sharp:
        for label, path in photos.items():
            data = path.read_bytes()
            width, height = Image.open(path).size
            for pipeline in PIPELINES:
                quiet = wait_for_quiet()
                a = time_calls(limit_call(pipeline, data, width, height), *IN_PROCESS_RUNS)
                b = time_calls(darkroom_call(pipeline, data), *IN_PROCESS_RUNS)
                query = f"/v1/process?ops={pipeline}&format=jpeg&quality={QUALITY}"
                c1 = load(darkroom_port, "POST", query, data, 1, *HTTP_RUNS[1])
                c4 = load(darkroom_port, "POST", query, data, 4, *HTTP_RUNS[4])
                rows.append(
                    {
                        "photo": label,
                        "pipeline": pipeline,
                        "quiet": quiet,
                        "a": a,
                        "b": b,
                        "c1": c1,
                        "c4": c4,
                    }
                )
                # Right after Darkroom's c=4, so both see the same machine.
                step = SHARP.get(pipeline)
                if sharp is not None and step is not None:
                    peer = f"/process?ops={step}&quality={QUALITY}"
                    rows[-1]["f4"] = load(sharp, "POST", peer, data, 4, *HTTP_RUNS[4])
                print(f"  measured {label} {pipeline}", file=sys.stderr)
    thumbor = thumbor_venv()
    if thumbor is not None:
        name = photos["1080p"].name
        for key, baseline in (("d4", False), ("d4_baseline", True)):
            port = free_port()
            command = [str(thumbor), "-p", str(port), "-i", "127.0.0.1", "-l", "warning"]
            command += ["-c", str(thumbor_config(photos["1080p"].parent, baseline=baseline))]
            with server(command, port, "/healthcheck", {}):
                for row in rows:
                    prefix = THUMBOR.get(str(row["pipeline"]))
                    if row["photo"] != "1080p" or prefix is None:
                        continue
                    row["quiet"] = wait_for_quiet() and row["quiet"]
                    row[key] = load(port, "GET", f"/{prefix}/{name}", None, 4, *HTTP_RUNS[4])
    print_table(rows)
    (CACHE / "last-run.json").write_text(json.dumps(summary(rows), indent=1))


@contextmanager
def sharp_server() -> Iterator[int | None]:
    """(f) sharp's server on a free port for the block; None, having said why, if it cannot run."""
    modules = sharp_modules()
    node = shutil.which("node")
    if modules is None or node is None:
        yield None
        return
    port = free_port()
    env = {
        # cores + 1 images at once, one libvips thread each: Darkroom's jobs and threads.
        "UV_THREADPOOL_SIZE": str((os.cpu_count() or 2) + 1),
        "SHARP_CONCURRENCY": "1",
    }
    with ExitStack() as stack:
        try:
            stack.enter_context(
                server([node, str(SHARP_SERVER), str(port), str(modules)], port, "/healthz", env)
            )
        except RuntimeError as exc:
            print(f"sharp unavailable: {exc}")
            yield None
            return
        yield port


def summary(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for row in rows:
        item: dict[str, object] = {
            "photo": row["photo"],
            "pipeline": row["pipeline"],
            "quiet": row["quiet"],
        }
        for key in ("a", "b", "c1", "c4", "d4", "d4_baseline", "f4"):
            timing = row.get(key)
            if isinstance(timing, Timing):
                item[key] = {"p50": timing.p50, "p99": timing.p99, "rps": timing.rps}
        out.append(item)
    return out


def print_table(rows: list[dict[str, object]]) -> None:
    header = (
        "| photo | pipeline | (a) limit ms p50 | (b) darkroom ms p50/p99 | b/a "
        "| (c) HTTP c=1 ms p50/p99 | (c) HTTP c=4 ms p50/p99 | c=4 req/s | 2-core limit req/s "
        "| c4/limit | (d) thumbor defaults c=4 req/s | c/d "
        "| (e) thumbor baseline c=4 req/s | c/e "
        "| (f) sharp c=4 ms p50/p99 | (f) sharp c=4 req/s | c/f |"
    )
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        a, b, c1, c4 = (row[k] for k in ("a", "b", "c1", "c4"))
        assert isinstance(a, Timing) and isinstance(b, Timing)
        assert isinstance(c1, Timing) and isinstance(c4, Timing)
        two_core = 2 * 1000 / a.p50
        thumbor = ""
        for key in ("d4", "d4_baseline"):
            d4 = row.get(key)
            if isinstance(d4, Timing):
                thumbor += f" | {d4.rps:.1f} | {c4.rps / d4.rps:.1f}×"
            else:
                thumbor += " | — | —"
        f4 = row.get("f4")
        if isinstance(f4, Timing):
            sharp = f" | {f4.p50:.1f} / {f4.p99:.1f} | {f4.rps:.1f} | {c4.rps / f4.rps:.2f}×"
        else:
            sharp = " | — | — | —"
        busy = "" if row["quiet"] else " (busy)"
        print(
            f"| {row['photo']}{busy} | `{row['pipeline']}` | {a.p50:.1f} "
            f"| {b.p50:.1f} / {b.p99:.1f} | {b.p50 / a.p50:.2f} "
            f"| {c1.p50:.1f} / {c1.p99:.1f} | {c4.p50:.1f} / {c4.p99:.1f} | {c4.rps:.1f} "
            f"| {two_core:.1f} | {c4.rps / two_core:.2f}{thumbor}{sharp} |"
        )


if __name__ == "__main__":
    if shutil.which("dpkg-deb") is None:
        print("note: dpkg-deb missing; falling back to samples/")
    main()
