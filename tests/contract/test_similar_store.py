"""Near-duplicates in every store: similar images through the band index, duplicate groups.

Runs on SQLite, on the Mongo store over mongomock, and over a real server when MONGO_URL is
set. Hashes are chosen bit by bit, so every distance below is known exactly.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.errors import ImageNotFound
from catalog.fingerprint import hamming, to_hex
from catalog.models import DuplicatePage, ImageMeta, ImageRecord, PhotoMeta
from catalog.store import ImageStore
from catalog.store.bulk import drop
from tests.contract.stores import empty_store

BASE = 0x0123_4567_89AB_CDEF


def flip(value: int, *bits: int) -> int:
    """The value with these bit positions flipped."""
    for bit in bits:
        value ^= 1 << bit
    return value


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    opened = empty_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        drop(opened)
        opened.close()


def add(store: ImageStore, name: str, value: int | None, *, pixels: int = 100) -> str:
    """Add an image with this pHash (and pixels wide, 1 high); returns its id."""
    data = name.encode()
    photo = PhotoMeta(phash=None if value is None else to_hex(value))
    meta = ImageMeta(
        sha256=hashlib.sha256(data).hexdigest(),
        format="png",
        mode="L",
        width=pixels,
        height=1,
        exif_orientation=1,
        bytes=len(data),
        photo=photo,
    )
    record, created = store.add(meta, name, data)
    assert created
    return record.id


def groups(store: ImageStore) -> list[list[str]]:
    """Every duplicate group's member names, in page order, following the cursors."""
    found: list[list[str]] = []
    cursor: str | None = None
    for _ in range(100):
        page: DuplicatePage = store.duplicate_groups(2, cursor)
        for group in page.items:
            assert group.group == group.images[0].id
            found.append([image.name for image in group.images])
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("the pages never ended")


def test_similar_finds_every_hash_within_the_distance_nearest_first(store: ImageStore) -> None:
    query = add(store, "query", BASE)
    # Spread over bands: 8 flips, 2 in every band, is the farthest the default finds.
    distances = {
        "same": BASE,
        "one": flip(BASE, 0),
        "two-bands": flip(BASE, 1, 17),
        "eight": flip(BASE, 2, 3, 18, 19, 34, 35, 50, 51),
        "nine": flip(BASE, 2, 3, 18, 19, 34, 35, 50, 51, 60),
        "inverse": BASE ^ (2**64 - 1),
    }
    ids = {name: add(store, name, value) for name, value in distances.items()}
    add(store, "no-hash", None)

    page = store.similar(query, 8, 24)
    found = [(item.image.name, item.distance) for item in page.items]
    assert found == [("same", 0), ("one", 1), ("two-bands", 2), ("eight", 8)]
    assert page.items[0].image.id == ids["same"]

    assert [item.image.name for item in store.similar(query, 12, 24).items][-1] == "nine"
    assert [item.image.name for item in store.similar(query, 0, 24).items] == ["same"]
    assert len(store.similar(query, 8, 2).items) == 2


def test_similar_ties_are_ordered_by_id(store: ImageStore) -> None:
    query = add(store, "query", BASE)
    ids = sorted(add(store, f"tie-{n}", flip(BASE, n * 16)) for n in range(4))
    assert [item.image.id for item in store.similar(query, 4, 10).items] == ids


def test_similar_of_unknown_or_unhashed_images(store: ImageStore) -> None:
    with pytest.raises(ImageNotFound):
        store.similar("0" * 20, 8, 24)
    unhashed = add(store, "no-hash", None)
    add(store, "other", BASE)
    assert store.similar(unhashed, 12, 24).items == []


def test_duplicates_are_single_link_named_after_the_largest(store: ImageStore) -> None:
    a = flip(BASE)
    b = flip(BASE, 0, 1, 2)  # 3 from a
    c = flip(BASE, 0, 1, 2, 20, 21, 22, 40, 41)  # 5 from b, 8 from a: joined through b
    add(store, "a", a, pixels=100)
    add(store, "b", b, pixels=300)
    add(store, "far", BASE ^ (2**64 - 1))
    assert groups(store) == [["b", "a"]]
    add(store, "c", c, pixels=200)
    assert hamming(a, c) == 8
    assert groups(store) == [["b", "c", "a"]]


def test_an_image_between_two_groups_merges_them(store: ImageStore) -> None:
    left = [flip(BASE, 60), flip(BASE, 60, 61)]
    right = [flip(BASE, 0, 1, 2, 3, 4, 5, 6), flip(BASE, 0, 1, 2, 3, 4, 5, 6, 7)]
    for n, value in enumerate(left):
        add(store, f"left-{n}", value, pixels=10 + n)
    for n, value in enumerate(right):
        add(store, f"right-{n}", value, pixels=20 + n)
    assert sorted(map(sorted, groups(store))) == [["left-0", "left-1"], ["right-0", "right-1"]]
    add(store, "bridge", flip(BASE, 0, 1, 2), pixels=5)  # 4 from left-0, 4 from right-0
    assert groups(store) == [["right-1", "right-0", "left-1", "left-0", "bridge"]]


def test_deleting_the_link_splits_the_group(store: ImageStore) -> None:
    a = flip(BASE)
    b = flip(BASE, 0, 1, 2)
    c = flip(BASE, 0, 1, 2, 20, 21, 22, 40, 41)
    d = flip(BASE, 0, 1, 2, 20, 21, 22, 40, 41, 42)  # 1 from c
    ids = {name: add(store, name, value, pixels=p) for name, value, p in
           [("a", a, 10), ("b", b, 40), ("c", c, 20), ("d", d, 30)]}  # fmt: skip
    assert groups(store) == [["b", "d", "c", "a"]]
    store.delete(ids["b"])
    assert groups(store) == [["d", "c"]]  # a is 8 from c and 9 from d: alone, no group
    store.delete(ids["d"])
    assert groups(store) == []
    assert store.similar(ids["a"], 12, 24).items[0].image.name == "c"


def test_group_pages_cover_every_group_once_in_order(store: ImageStore) -> None:
    for n in range(5):
        far = BASE ^ (0x1111_1111_1111_1111 * n)  # 16 * n bits from BASE
        add(store, f"{n}-big", far, pixels=200)
        add(store, f"{n}-small", flip(far, 7), pixels=100)
    found = groups(store)
    assert sorted(found) == [[f"{n}-big", f"{n}-small"] for n in range(5)]
    first_page = store.duplicate_groups(2, None)
    names = [group.group for group in first_page.items]
    assert names == sorted(names) and first_page.next_cursor is not None
    last = store.duplicate_groups(100, None)
    assert last.next_cursor is None and len(last.items) == 5


def test_records_keep_no_band_fields(store: ImageStore) -> None:
    image = add(store, "a", BASE)
    add(store, "b", flip(BASE, 3))
    record = store.get(image)
    assert isinstance(record, ImageRecord)
    assert record.phash == to_hex(BASE)
    assert "bands" not in record.model_dump() and "dup_group" not in record.model_dump()
