"""Similar images and duplicate groups are found through their indexes, never by a scan.

SQLite's plans are read on every run; MongoDB's only on a real server (MONGO_URL), since
mongomock has no query planner. Also: records bulk-loaded with add_records are indexed
like added ones, and join_groups groups them.
"""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.fingerprint import to_hex
from catalog.models import ImageRecord
from catalog.store import ImageStore
from catalog.store.bulk import add_records, drop, explain_groups, explain_similar, join_groups
from catalog.store.mongo import MongoImageStore
from catalog.store.sqlite import SqliteImageStore
from tests.contract.stores import MONGO_URL, empty_store
from tests.contract.test_image_store import bulk_records
from tests.contract.test_mongo_plans import stages

COUNT = 600


def hashed_records() -> list[ImageRecord]:
    """COUNT records with random pHashes; record 2k + 1 is record 2k with one bit flipped,
    for k < 10, so there are exactly 10 duplicate pairs (random hashes are ~32 bits apart).
    """
    rng = random.Random(5)
    hashes = [rng.getrandbits(64) for _ in range(COUNT)]
    for k in range(10):
        hashes[2 * k + 1] = hashes[2 * k] ^ (1 << (3 * k))
    records = bulk_records(COUNT)
    return [r.model_copy(update={"phash": to_hex(h)}) for r, h in zip(records, hashes, strict=True)]


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    store = empty_store(request.param, tmp_path)
    records = hashed_records()
    assert add_records(store, records) == COUNT
    join_groups(store, [record.id for record in records[:20]])
    try:
        yield store
    finally:
        drop(store)
        store.close()


def test_bulk_loaded_records_are_found_and_grouped(loaded: ImageStore) -> None:
    records = hashed_records()
    for k in range(10):
        first, second = records[2 * k], records[2 * k + 1]
        items = loaded.similar(first.id, 8, 24).items
        assert [(item.image.id, item.distance) for item in items] == [(second.id, 1)]
    page = loaded.duplicate_groups(100, None)
    pairs = sorted(sorted(image.id for image in group.images) for group in page.items)
    expected = sorted(sorted((records[2 * k].id, records[2 * k + 1].id)) for k in range(10))
    assert pairs == expected and page.next_cursor is None


def test_sqlite_probes_and_pages_walk_their_indexes(loaded: ImageStore) -> None:
    if not isinstance(loaded, SqliteImageStore):
        pytest.skip("the SQLite plan")
    for distance in (0, 6, 12):
        plan = explain_similar(loaded, 0x0123_4567_89AB_CDEF, distance)
        assert plan == ["SEARCH image_bands USING PRIMARY KEY (band=? AND value=?)"], plan
    plan = explain_groups(loaded)
    assert len(plan) == 1 and plan[0].startswith(
        "SEARCH image_hashes USING COVERING INDEX image_hashes_by_group (dup_group>?)"
    ), plan


def test_mongo_probes_and_pages_walk_their_indexes(loaded: ImageStore) -> None:
    if not isinstance(loaded, MongoImageStore) or not MONGO_URL:
        pytest.skip("the plan of a real MongoDB server")
    for plan, index in (
        (explain_similar(loaded, 0x0123_4567_89AB_CDEF, 8), "bands"),
        (explain_groups(loaded), "dup_group"),
    ):
        winning = list(stages(plan["queryPlanner"]["winningPlan"]))
        assert not [s for s in winning if s["stage"] in ("COLLSCAN", "SORT")], winning
        assert [s for s in winning if s.get("indexName") == index], winning
