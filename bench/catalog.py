"""Catalog benchmark: queries over 100,000 and 1,000,000 records, and ingest of 1080p photos.

    .venv/bin/python bench/catalog.py                 # SQLite (in a temporary folder)
    MONGO_URL=mongodb://127.0.0.1:27017 .venv/bin/python bench/catalog.py   # SQLite, then MongoDB

Records are metadata-only (bulk-loaded through catalog.store.bulk.add_records, same schema as
uploads), with synthetic photo metadata (photo_fields: date taken, camera, colour, location)
for the photo filter and sort=taken rows. Queries are timed through the store's query() and
stats(), without HTTP. Ingest times catalog.ingest.ingest per photo, as an upload runs it
without HTTP: header, pixel check (a JPEG decoded at 1/8 scale) with EXIF, colour and pHash
from those pixels, SHA-256, then store.add (blob write + insert), using
1080p JPEGs cut from Debian's plasma-workspace-wallpapers (fetched into bench/.cache/) or,
when apt cannot fetch it, from samples/ resized with Pillow. Targets on SQLite: p99 < 10 ms
for every query at 1M records, page 1,000 within 1.5x of page 1, ingest >= 200 photos/s;
similar() p99 < 20 ms (max_distance <= 8) and the first page of duplicates p99 < 50 ms.
"""

# ruff: noqa: E402 - the catalog package is importable only once sys.path is fixed below.
import sys
from pathlib import Path

# Python puts this file's folder first on sys.path, where this file's name would shadow
# the catalog package it benchmarks.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import hashlib
import io
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image
from pymongo import MongoClient

from catalog.blobs import BlobStore
from catalog.config import Settings
from catalog.fingerprint import to_hex
from catalog.ingest import ingest
from catalog.models import (
    COLOUR_CLASSES,
    DEFAULT_DUPLICATE_DISTANCE,
    SORT_KEYS,
    CountQuery,
    ImageFormat,
    ImageQuery,
    ImageRecord,
    camera_name,
    encode_cursor,
    orientation_of,
)
from catalog.store import ImageStore
from catalog.store.bulk import add_records, drop, join_groups
from catalog.store.mongo import MongoImageStore
from catalog.store.sqlite import SqliteImageStore

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
PHOTOS = CACHE / "photos-1080p"
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "100000,1000000").split(","))
REPEATS = 200
PAGES = 1000
PHOTO_COUNT = 300
BATCH = 50_000
# Common camera and screen sizes, each jittered so widths and heights are not all ties.
DIMENSIONS = [
    (640, 480), (800, 600), (1024, 768), (1280, 720), (1920, 1080), (2560, 1440),
    (3840, 2160), (4000, 3000), (6000, 4000), (3000, 4000), (1080, 1920), (1080, 1080),
    (2048, 2048), (4032, 3024), (3024, 4032), (5472, 3648), (7952, 5304),
]  # fmt: skip
FORMATS: tuple[ImageFormat, ...] = ("jpeg",) * 6 + ("png", "png", "webp", "gif", "tiff", "bmp")
RANGE = {"min_width": 1920, "max_width": 4096, "min_height": 1000, "max_height": 3000}
TARGET_P99_MS = 10.0
TARGET_DEEP_RATIO = 1.5
TARGET_INGEST = 200.0
# Every CLUSTER records, CLUSTER_SIZE near-duplicates: 4 % of the records in groups of 4.
CLUSTER = 100
CLUSTER_SIZE = 4
TARGET_SIMILAR_MS = 20.0
TARGET_DUPLICATES_MS = 50.0


def records(start: int, stop: int) -> Iterator[ImageRecord]:
    """Deterministic synthetic records number start..stop-1."""
    rng = random.Random(start)
    epoch = datetime(2015, 1, 1, tzinfo=UTC)
    for n in range(start, stop):
        sha = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
        width, height = rng.choice(DIMENSIONS)
        width += rng.randrange(64)
        height += rng.randrange(64)
        yield ImageRecord.model_construct(
            id=sha[:20],
            name=f"IMG_{rng.randrange(100_000):05d}_{n}.jpg",
            sha256=sha,
            format=rng.choice(FORMATS),
            mode="RGB",
            width=width,
            height=height,
            pixels=width * height,
            aspect=round(width / height, 4),
            orientation=orientation_of(width, height),
            bytes=rng.randrange(100_000, 20_000_000),
            exif_orientation=1,
            created=epoch + timedelta(seconds=n * 300 + rng.randrange(300)),
            **photo_fields(rng),
        )


def grow(store: ImageStore, have: int, want: int) -> float:
    """Bulk-load records have..want-1; returns seconds taken."""
    began = time.perf_counter()
    for start in range(have, want, BATCH):
        add_records(store, hashed(records(start, min(start + BATCH, want))))
        join_groups(store, clustered_ids(start, min(start + BATCH, want)))
    return time.perf_counter() - began


def phash_of(n: int) -> int:
    """Record n's pHash: random, except that records n % CLUSTER in 1..3 are near copies
    (1 to 5 bits flipped) of the cluster's first record, as a photo and its edits are."""
    base = random.Random(n - n % CLUSTER).getrandbits(64)
    if not 0 < n % CLUSTER < CLUSTER_SIZE:
        return base if n % CLUSTER == 0 else random.Random(-n - 1).getrandbits(64)
    rng = random.Random(n)
    for bit in rng.sample(range(64), rng.randint(1, 5)):
        base ^= 1 << bit
    return base


def hashed(batch: Iterator[ImageRecord]) -> Iterator[ImageRecord]:
    """The records with their pHashes set (phash_of the record's number, by order)."""
    for record in batch:
        record.phash = to_hex(phash_of(int(record.name.rsplit("_", 1)[1].split(".")[0])))
        yield record


def clustered_ids(start: int, stop: int) -> list[str]:
    """The ids of the near copies among records start..stop-1 (grouped after loading)."""
    return [
        hashlib.sha256(n.to_bytes(8, "big")).hexdigest()[:20]
        for n in range(start, stop)
        if 0 < n % CLUSTER < CLUSTER_SIZE
    ]


def bench_similar(store: ImageStore, size: int) -> list[str]:
    """Time similar() from random records and the first page of duplicate groups."""
    missed: list[str] = []
    rng = random.Random(size)
    ids = [clustered_ids(n - n % CLUSTER + 1, n - n % CLUSTER + 2)[0] for n in
           (rng.randrange(size - CLUSTER) for _ in range(REPEATS // 2))]  # fmt: skip
    ids += [hashlib.sha256(rng.randrange(size).to_bytes(8, "big")).hexdigest()[:20]
            for _ in range(REPEATS // 2)]  # fmt: skip
    for distance in (DEFAULT_DUPLICATE_DISTANCE, 8, 12):
        queries = iter(ids * 3)
        times = timed(lambda: store.similar(next(queries), distance, 24))  # noqa: B023
        target = TARGET_SIMILAR_MS if distance <= 8 else None
        p99 = target_row(f"similar, max_distance={distance}, limit=24", times, target)
        if distance <= 8 and p99 >= TARGET_SIMILAR_MS:
            missed.append(f"{size:,}: similar max_distance={distance} p99 {p99:.2f} ms")
    first = timed(lambda: store.duplicate_groups(20, None))
    p99 = target_row("duplicates, first page (20 groups)", first, TARGET_DUPLICATES_MS)
    if p99 >= TARGET_DUPLICATES_MS:
        missed.append(f"{size:,}: duplicates first page p99 {p99:.2f} ms")
    cursor, deep, pages = None, None, 1
    for _ in range(PAGES):
        cursor = store.duplicate_groups(20, cursor).next_cursor
        if cursor is None:
            break
        deep, pages = cursor, pages + 1
    if deep is not None:
        times = timed(lambda: store.duplicate_groups(20, deep))
        target_row(f"duplicates, page {pages:,} by cursor", times, TARGET_DUPLICATES_MS)
    return missed


def target_row(label: str, times: list[float], target: float | None) -> float:
    """Print p50 and p99 against the row's own target (none: only reported); returns p99."""
    p99 = p(times, 99)
    mark = "   " if target is None else "ok " if p99 < target else "SLOW"
    print(f"  {mark} {label:<44} p50 {p(times, 50):7.2f} ms   p99 {p99:7.2f} ms")
    return p99


def timed(call: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    """Milliseconds per call, after two warm-up calls."""
    call()
    call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def time_query(store: ImageStore, query: ImageQuery) -> list[float]:
    """Milliseconds per store.query of this query."""
    return timed(lambda: store.query(query))


def p(times: list[float], q: float) -> float:
    """The q-th percentile (0..100) of the times."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def row(label: str, times: list[float]) -> float:
    """Print p50 and p99; returns p99."""
    p99 = p(times, 99)
    mark = "ok " if p99 < TARGET_P99_MS else "SLOW"
    print(f"  {mark} {label:<44} p50 {p(times, 50):7.2f} ms   p99 {p99:7.2f} ms")
    return p99


def page_at(store: ImageStore, base: dict[str, object], page: int) -> ImageQuery:
    """The query of the given page (1-based), found by walking next_cursor."""
    query = ImageQuery.model_validate(base)
    for _ in range(page - 1):
        cursor = store.query(query).next_cursor
        assert cursor is not None, "not enough records for that page"
        query = query.model_copy(update={"cursor": cursor})
    return query


def bench_queries(store: ImageStore, size: int) -> list[str]:
    """Time the listed queries; returns the targets missed."""
    missed: list[str] = []
    print(f"\n{size:,} records")
    for sort in SORT_KEYS:
        query = ImageQuery.model_validate({**RANGE, "sort": sort, "limit": 50})
        p99 = row(f"width 1920-4096, height 1000-3000, sort={sort}", time_query(store, query))
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: range sort={sort} p99 {p99:.2f} ms")
    landscape = ImageQuery(
        min_width=1920, format=["jpeg"], orientation="landscape", sort="-width", limit=50
    )
    p99 = row("landscape JPEGs >= 1920 wide, sort=-width", time_query(store, landscape))
    if p99 >= TARGET_P99_MS:
        missed.append(f"{size:,}: landscape JPEGs p99 {p99:.2f} ms")
    for label, base in (
        ("sort=-created", {"sort": "-created", "limit": 50}),
        ("width >= 1024, sort=-pixels", {"min_width": 1024, "sort": "-pixels", "limit": 50}),
    ):
        first = page_at(store, base, 1)
        deep = page_at(store, base, PAGES)
        first_times, deep_times = time_query(store, first), time_query(store, deep)
        row(f"page 1 ({label})", first_times)
        p99 = row(f"page {PAGES:,} by cursor ({label})", deep_times)
        ratio = p(deep_times, 50) / p(first_times, 50)
        print(f"       page {PAGES:,} / page 1 (p50): {ratio:.2f}x")
        if ratio > TARGET_DEEP_RATIO:
            missed.append(f"{size:,}: page {PAGES} / page 1 ({label}) {ratio:.2f}x")
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: page {PAGES} ({label}) p99 {p99:.2f} ms")
    p99 = row("stats", timed(store.stats))
    if p99 >= TARGET_P99_MS:
        missed.append(f"{size:,}: stats p99 {p99:.2f} ms")
    return missed


# Photo metadata of the synthetic records: 40 cameras used in Zipf-like proportions (the
# first ~1 in 5 photos with a camera, the last ~1 in 200), 15 colour classes, 85 % dated
# over 15 years, 30 % with a location.
CAMERAS = [
    (make, f"{model} {k}")
    for k in range(1, 9)
    for make, model in (
        ("Canon", "Canon EOS"), ("Apple", "iPhone"), ("NIKON CORPORATION", "NIKON D"),
        ("SONY", "ILCE-"), ("FUJIFILM", "X-T"),
    )
]  # fmt: skip
CAMERA_WEIGHTS = [1 / (rank + 1) for rank in range(len(CAMERAS))]
COLOURS = list(COLOUR_CLASSES)
COLOUR_WEIGHTS = [3, 4, 3, 1, 3, 1, 1, 3, 4, 1, 1, 1, 8, 5, 2]
TAKEN_EPOCH = datetime(2010, 1, 1)
TAKEN_SPAN_S = 15 * 365 * 86400


def photo_fields(rng: random.Random) -> dict[str, Any]:
    """Random photo metadata for one synthetic record (no coordinates: GPS is not kept)."""
    fields: dict[str, Any] = {"dominant_colour": "#808080", "lens": None, "location": None}
    if rng.random() < 0.85:
        taken = TAKEN_EPOCH + timedelta(seconds=rng.randrange(TAKEN_SPAN_S))
        fields["taken_at"] = taken.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(["", "+02:00"])
    else:
        fields["taken_at"] = None
    make, model = rng.choices(CAMERAS, CAMERA_WEIGHTS)[0] if rng.random() < 0.9 else (None, None)
    fields.update(camera_make=make, camera_model=model, camera=camera_name(make, model))
    fields["colour"] = rng.choices(COLOURS, COLOUR_WEIGHTS)[0]
    fields["has_location"] = rng.random() < 0.3
    return fields


def bench_photo_queries(store: ImageStore, size: int) -> list[str]:
    """Time the photo-metadata filters, sort=taken and its deep pages, counts and cameras."""
    missed: list[str] = []
    common, rare = CAMERAS[0], CAMERAS[-1]
    common_name, rare_name = camera_name(*common), camera_name(*rare)
    year: dict[str, object] = {"taken_after": "2019-01-01", "taken_before": "2019-12-31"}
    day: dict[str, object] = {"taken_after": "2019-07-14", "taken_before": "2019-07-14"}
    pages: list[tuple[str, dict[str, object]]] = [
        ("sort=taken", {"sort": "taken"}),
        ("sort=-taken", {"sort": "-taken"}),
        ("taken in 2019, sort=-taken", {**year, "sort": "-taken"}),
        ("taken in 2019 (sort=-created)", year),
        ("taken on 2019-07-14 (sort=-created)", day),
        (f"camera={common_name} (sort=-created)", {"camera": common_name}),
        (f"camera={rare_name} (sort=-created)", {"camera": rare_name}),
        (f"camera={common_name}, sort=-taken", {"camera": common_name, "sort": "-taken"}),
        ("colour=blue (sort=-created)", {"colour": "blue"}),
        ("colour=rose (sort=-created)", {"colour": "rose"}),
        ("has_location=true (sort=-created)", {"has_location": True}),
        ("has_location=false (sort=-created)", {"has_location": False}),
        ("colour=red, has_location=true, camera", {"colour": "red", "has_location": True,
                                                   "camera": common_name}),
    ]  # fmt: skip
    for label, params in pages:
        p99 = row(label, time_query(store, ImageQuery.model_validate({**params, "limit": 50})))
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: {label} p99 {p99:.2f} ms")
    for label, base in (("sort=-taken", {"sort": "-taken", "limit": 50}),):
        first, deep = page_at(store, base, 1), page_at(store, base, PAGES)
        first_times, deep_times = time_query(store, first), time_query(store, deep)
        p99 = row(f"page {PAGES:,} by cursor ({label})", deep_times)
        ratio = p(deep_times, 50) / p(first_times, 50)
        print(f"       page {PAGES:,} / page 1 (p50): {ratio:.2f}x")
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: page {PAGES} ({label}) p99 {p99:.2f} ms")
    # The page after the oldest dated image ends the dated ones and starts the undated.
    oldest = store.query(ImageQuery(sort="taken", limit=1)).items[0]
    crossing = ImageQuery(sort="-taken", limit=50, cursor=encode_cursor("-taken", oldest))
    undated = store.query(crossing).items[-1]
    within = ImageQuery(sort="-taken", limit=50, cursor=encode_cursor("-taken", undated))
    for label, query in (("sort=-taken, into the undated", crossing),
                         ("sort=-taken, among the undated", within)):  # fmt: skip
        p99 = row(label, time_query(store, query))
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: {label} p99 {p99:.2f} ms")
    counts: list[tuple[str, dict[str, object]]] = [
        ("count camera (common)", {"camera": common_name}),
        ("count colour=blue", {"colour": "blue"}),
        ("count has_location=true", {"has_location": True}),
        ("count taken in 2019", {"taken_after": "2019-01-01", "taken_before": "2019-12-31"}),
    ]
    for label, params in counts:
        counted = CountQuery.model_validate(params)
        p99 = row(label, timed(lambda q=counted: store.count(q)))  # type: ignore[misc]
        if p99 >= TARGET_P99_MS:
            missed.append(f"{size:,}: {label} p99 {p99:.2f} ms")
    p99 = row("cameras (top 200)", timed(store.cameras))
    if p99 >= TARGET_P99_MS:
        missed.append(f"{size:,}: cameras p99 {p99:.2f} ms")
    return missed


def wallpapers() -> list[Path]:
    """Debian's KDE wallpapers, fetched with apt and unpacked into bench/.cache/ once."""
    unpacked = CACHE / "wallpapers" / "usr" / "share" / "wallpapers"
    if not unpacked.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        if not list(CACHE.glob("plasma-workspace-wallpapers_*.deb")):
            subprocess.run(
                ["apt-get", "download", "plasma-workspace-wallpapers"],
                cwd=CACHE, check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        deb = next(CACHE.glob("plasma-workspace-wallpapers_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(CACHE / "wallpapers")], check=True)
    return sorted(p for p in unpacked.rglob("*.jpg") if p.stem.startswith(("3840", "5120")))


def photos() -> tuple[list[bytes], str]:
    """PHOTO_COUNT distinct 1920x1080 JPEGs, and where they came from."""
    PHOTOS.mkdir(parents=True, exist_ok=True)
    marker = PHOTOS / "SOURCE"
    cached = sorted(PHOTOS.glob("*.jpg"))
    if len(cached) >= PHOTO_COUNT and marker.is_file():
        return [p.read_bytes() for p in cached[:PHOTO_COUNT]], marker.read_text().strip()
    try:
        sources, origin = wallpapers(), "Debian plasma-workspace-wallpapers (3840/5120 px JPEGs)"
    except (OSError, subprocess.SubprocessError, StopIteration) as exc:
        print(f"  (wallpapers unavailable: {exc}; using samples/ resized instead)")
        sources, origin = [], ""
    if not sources:
        sources = sorted((ROOT / "samples").glob("*.jpg")) + sorted(
            (ROOT / "samples").glob("*.png")
        )
        origin = "samples/ resized to 1920x1080 with Pillow"
    shutil.rmtree(PHOTOS)
    PHOTOS.mkdir()
    rng = random.Random(7)
    out: list[bytes] = []
    for n in range(PHOTO_COUNT):
        with Image.open(sources[n % len(sources)]) as source:
            scale = rng.uniform(1.0, 1.4) * max(1920 / source.width, 1080 / source.height)
            size = (round(source.width * scale) + 1, round(source.height * scale) + 1)
            image = source.convert("RGB").resize(size)
        x, y = rng.randrange(image.width - 1919), rng.randrange(image.height - 1079)
        crop = image.crop((x, y, x + 1920, y + 1080))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90)
        (PHOTOS / f"{n:04d}.jpg").write_bytes(buffer.getvalue())
        out.append(buffer.getvalue())
    marker.write_text(origin + "\n")
    return out, origin


def bench_ingest(make_store: Callable[[], ImageStore], data: list[bytes]) -> float:
    """Photos per second through catalog.ingest.ingest, one thread then two."""
    settings = Settings()

    def ingest_one(blob: bytes) -> None:
        _, created = ingest(store, settings, blob, "photo.jpg")
        assert created

    rates = []
    for threads in (1, 2):
        store = make_store()
        try:
            began = time.perf_counter()
            if threads == 1:
                for blob in data:
                    ingest_one(blob)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(ingest_one, data))
            elapsed = time.perf_counter() - began
        finally:
            store.close()
        rate = len(data) / elapsed
        megabytes = sum(map(len, data)) / elapsed / 1e6
        print(f"  ingest, {threads} thread(s): {rate:7.1f} photos/s ({megabytes:.0f} MB/s)")
        rates.append(rate)
    return max(rates)


def run(name: str, open_store: Callable[[str], ImageStore], data: list[bytes]) -> list[str]:
    """The whole benchmark on one backend; returns the targets missed."""
    print(f"\n=== {name} ===")
    store = open_store("records")
    missed: list[str] = []
    try:
        have = 0
        for size in SIZES:
            seconds = grow(store, have, size)
            print(f"\nloaded {size - have:,} records in {seconds:.1f} s")
            have = size
            missed += bench_queries(store, size)
            missed += bench_photo_queries(store, size)
            missed += bench_similar(store, size)
    finally:
        store.close()
    print(
        f"\ningest of {len(data)} 1080p JPEGs ({sum(map(len, data)) / len(data) / 1e3:.0f} kB each)"
    )
    rate = bench_ingest(lambda: open_store(f"ingest-{uuid.uuid4().hex[:6]}"), data)
    if rate < TARGET_INGEST:
        missed.append(f"ingest {rate:.0f} photos/s")
    return missed


def main() -> int:
    """Run on SQLite, and on MongoDB when MONGO_URL is set; 1 when a SQLite target is missed."""
    print(f"catalog benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    data, origin = photos()
    print(f"photos: {origin}")
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-") as temp:
        root = Path(temp)

        def sqlite(label: str) -> ImageStore:
            return SqliteImageStore(root / f"{label}.db", BlobStore(root / f"{label}-blobs"))

        missed = run("SQLite", sqlite, data)
    mongo_url = os.environ.get("MONGO_URL")
    if mongo_url:
        client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, tz_aware=True)
        opened: list[MongoImageStore] = []

        def mongo(label: str) -> ImageStore:
            name = f"darkroom_bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
            opened.append(MongoImageStore(client, name, owns_client=False))
            return opened[-1]

        try:
            mongo_missed = run("MongoDB", mongo, data)
        finally:
            for store in opened:
                drop(store)
            client.close()
        print("\nMongoDB targets missed (not required): " + ("; ".join(mongo_missed) or "none"))
    print("\nSQLite targets missed: " + ("; ".join(missed) or "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
