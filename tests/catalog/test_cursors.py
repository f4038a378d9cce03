"""Cursors: the catalog reads back only the cursors it made; any other text is a 422.

Each API test runs on SQLite and on the Mongo store over mongomock. A tampered cursor must
never reach a store, which may fail to bind it (SQLite cannot bind 10**30 or a lone
surrogate) or read it as a position no record can have: it is refused as ``cursor``.
"""

import base64
import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog.config import Settings
from catalog.main import create_app
from catalog.models import (
    MAX_COUNT,
    MAX_NAME_LENGTH,
    SORT_KEYS,
    CursorPosition,
    ImageMeta,
    ImagePublic,
    ImageQuery,
    ImageRecord,
    SortKey,
    decode_cursor,
    encode_cursor,
    to_millis,
)
from catalog.store import ImageStore
from catalog.store.bulk import add_records, drop
from tests.contract.stores import empty_store

STORES = ["sqlite", "mongomock"]
ID = "0123456789abcdef0123"
# Cheap enough to run with the suite; no example database is written into the tree.
CHEAP = settings(max_examples=150, deadline=None, database=None)


def cursor_of(payload: str) -> str:
    """A cursor spelled as the catalog spells one, around any JSON text."""
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def record(n: int, *, width: int, height: int, name: str, created: datetime) -> ImageRecord:
    """Record number n, as the catalog would make it from an upload of that size."""
    meta = ImageMeta(
        sha256=hashlib.sha256(b"%d" % n).hexdigest(),
        format="png",
        mode="RGB",
        width=width,
        height=height,
        exif_orientation=1,
        bytes=100,
    )
    return ImageRecord.from_meta(meta, name=name, created=created)


# Ties on width, height, name and created on purpose.
RECORDS = [
    record(n, width=w, height=h, name=name, created=datetime(2024, 1, 1 + n % 3, tzinfo=UTC))
    for n, (w, h, name) in enumerate(
        [(10, 20, "a.png"), (10, 30, "b.png"), (20, 10, "été.png"), (30, 30, "a.png"),
         (20, 20, "Z 100%.png"), (40, 10, 'quote".png'), (20, 10, "back\\slash.png")]
    )
]  # fmt: skip


@contextmanager
def fresh_store(kind: str, root: Path) -> Iterator[ImageStore]:
    """An empty store of this kind, dropped afterwards."""
    store = empty_store(kind, root)
    try:
        yield store
    finally:
        drop(store)
        store.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    with fresh_store(request.param, tmp_path) as empty:
        yield empty


@pytest.fixture(scope="module", params=STORES)
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The app on a store holding RECORDS; the tests using it only read."""
    with fresh_store(request.param, tmp_path_factory.mktemp("catalog")) as store:
        add_records(store, RECORDS)
        with TestClient(create_app(settings=Settings(), store=store)) as client:
            yield client


def assert_refused_as_cursor(response: Any) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith("cursor: "), error["message"]


def answered_without_crash(response: Any) -> None:
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_refused_as_cursor(response)


def payload(sort: SortKey, value: str, item_id: str = ID) -> tuple[SortKey, str]:
    """(sort, JSON text of a cursor), the value already spelled as JSON."""
    return sort, f'[{json.dumps(sort)},{value},"{item_id}"]'


TAMPERED: dict[str, tuple[SortKey, str]] = {
    # Integers a record cannot hold; SQLite cannot bind the first two (OverflowError).
    "width 10**30": payload("width", str(10**30)),
    "width -2**70": payload("-width", str(-(2**70))),
    "pixels 2**63": payload("pixels", str(2**63)),
    "height 0": payload("height", "0"),
    "height -1": payload("-height", "-1"),
    "width true": payload("width", "true"),
    "width 512.0": payload("width", "512.0"),
    "width 5e2": payload("width", "5e2"),
    "width NaN": payload("width", "NaN"),
    "pixels Infinity": payload("-pixels", "Infinity"),
    "width as text": payload("width", '"512"'),
    "width null": payload("width", "null"),
    # Strings a record cannot hold; SQLite cannot bind a lone surrogate (UnicodeEncodeError).
    "lone high surrogate": payload("name", '"\\ud800"'),
    "lone low surrogate": payload("-name", '"a\\udfff.png"'),
    "empty name": payload("name", '""'),
    "over-long name": payload("name", json.dumps("a" * (MAX_NAME_LENGTH + 1))),
    "name as number": payload("name", "5"),
    "name as list": payload("name", '["a.png"]'),
    # Creation times that are not a record's: not text, naive, not UTC, finer than ms.
    "created 1e30": payload("-created", "1e30"),
    "created as millis": payload("created", "1704067200000"),
    "created naive": payload("-created", '"2024-01-01T00:00:00"'),
    "created +05:00": payload("-created", '"2024-01-01T00:00:00+05:00"'),
    "created Z": payload("-created", '"2024-01-01T00:00:00Z"'),
    "created with microseconds": payload("-created", '"2024-01-01T00:00:00.000001+00:00"'),
    "created month 13": payload("created", '"2024-13-01T00:00:00+00:00"'),
    "created in words": payload("created", '"yesterday"'),
    "created surrogate": payload("created", '"2024\\ud800"'),
    # Ids that no image can have.
    "id in capitals": payload("width", "10", ID.upper()),
    "id too short": payload("width", "10", ID[:-1]),
    "id too long": payload("width", "10", ID + "0"),
    "id with newline": payload("width", "10", ID + "\\n"),
    # Shapes and spellings encode_cursor never writes.
    "id as number": ("width", '["width",10,12345678901234567890]'),
    "unknown sort": ("width", f'["size",10,"{ID}"]'),
    "four items": ("width", f'["width",10,"{ID}",1]'),
    "two items": ("width", '["width",10]'),
    "object": ("width", f'{{"sort":"width","value":10,"id":"{ID}"}}'),
    "nested": ("width", "[" * 5000 + "]" * 5000),
    "spaces in the JSON": ("width", f'["width", 10, "{ID}"]'),
    "escaped name": ("name", f'["name","\\u0061.png","{ID}"]'),
    "escaped sort": ("width", f'["\\u0077idth",10,"{ID}"]'),
}


@pytest.mark.parametrize(("sort", "text"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_cursor_is_422_naming_cursor(catalog: TestClient, sort: str, text: str) -> None:
    response = catalog.get("/v1/images", params={"sort": sort, "cursor": cursor_of(text)})
    assert_refused_as_cursor(response)
    assert response.json()["error"]["message"] == "cursor: not a valid cursor"


def respellings(cursor: str) -> list[str]:
    """Other text that base64-decodes to the same bytes as a canonical cursor."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    padded = cursor + "=" * (-len(cursor) % 4)
    # The last character of an unpadded group carries unused low bits: set one of them.
    spare_bits = alphabet[alphabet.index(cursor[-1]) + 1]
    return [padded, cursor + "====", f" {cursor}", f"{cursor}\n", cursor[:-1] + spare_bits]


def test_respelled_cursor_of_a_real_position_is_422(catalog: TestClient) -> None:
    cursor = catalog.get("/v1/images", params={"sort": "width", "limit": 2}).json()["next_cursor"]
    assert cursor is not None
    assert len(cursor) % 4 != 0  # so that it has padding and spare bits to play with
    same_bytes = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for text in respellings(cursor):
        assert base64.urlsafe_b64decode(text.strip() + "===") == same_bytes
        response = catalog.get("/v1/images", params={"sort": "width", "cursor": text})
        assert_refused_as_cursor(response)
    assert catalog.get("/v1/images", params={"sort": "width", "cursor": cursor}).status_code == 200


MADE: dict[str, tuple[SortKey, str]] = {
    "largest width": payload("-width", str(MAX_COUNT), "f" * 20),
    "smallest height": payload("height", "1", "0" * 20),
    "longest name": payload("name", json.dumps("é" * MAX_NAME_LENGTH, ensure_ascii=False)),
    "quoted name": payload("name", json.dumps('quote".png')),
    "created with milliseconds": payload("created", '"2024-01-02T00:00:00.123000+00:00"'),
    "created in year 1": payload("created", '"0001-01-01T00:00:00+00:00"'),
}


@pytest.mark.parametrize(("sort", "text"), MADE.values(), ids=MADE.keys())
def test_positions_a_record_can_have_are_read(catalog: TestClient, sort: str, text: str) -> None:
    response = catalog.get("/v1/images", params={"sort": sort, "cursor": cursor_of(text)})
    assert response.status_code == 200, response.text


def test_cursor_at_the_largest_width_resumes_before_every_record(catalog: TestClient) -> None:
    sort, text = MADE["largest width"]
    response = catalog.get("/v1/images", params={"sort": sort, "cursor": cursor_of(text)})
    assert len(response.json()["items"]) == len(RECORDS)


def test_decode_cursor_rejects_what_the_api_rejects() -> None:
    for sort, text in TAMPERED.values():
        with pytest.raises(ValueError, match="not a valid cursor"):
            decode_cursor(cursor_of(text), sort)


# What stores choke on, or what no record holds: integers past int64 or below 1, bool, floats
# (non-finite too), lone surrogates, times that are naive or not UTC.
TROUBLE = st.sampled_from(
    [10**30, -(2**70), 2**63, 2**64, 0, -1, True, 512.0, math.nan, math.inf, "\ud800",
     "a\udfff", "", "2024-01-01T00:00:00", "2024-01-01T00:00:00+05:00", None]
) | st.integers() | st.floats() | st.text(st.characters(codec=None), max_size=20)  # fmt: skip
JSON_VALUES = st.recursive(
    TROUBLE | st.booleans() | st.sampled_from([*SORT_KEYS, ID, MAX_COUNT]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, str]:
    """(sort, cursor): base64 of any JSON, most often the right sort and id around junk."""
    sort = draw(st.sampled_from(SORT_KEYS))
    shaped = st.tuples(
        st.just(sort) | st.just(sort) | JSON_VALUES,
        TROUBLE | TROUBLE | JSON_VALUES,
        st.just(ID) | st.just(ID) | JSON_VALUES,
    ).map(list)
    value = draw(shaped | shaped | shaped | JSON_VALUES)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")  # a raw surrogate the reader must refuse
    cursor = base64.urlsafe_b64encode(raw).decode()
    return sort, cursor if draw(st.booleans()) else cursor.rstrip("=")


def tampered_case(name: str) -> tuple[str, str]:
    """(sort, cursor) of one of the TAMPERED cases."""
    sort, text = TAMPERED[name]
    return sort, cursor_of(text)


@CHEAP
@given(sort=st.sampled_from(SORT_KEYS), cursor=st.text())
def test_any_text_as_cursor_is_200_or_422(catalog: TestClient, sort: str, cursor: str) -> None:
    answered_without_crash(catalog.get("/v1/images", params={"sort": sort, "cursor": cursor}))


@CHEAP
@given(case=tampered())
@example(case=tampered_case("width 10**30"))
@example(case=tampered_case("width -2**70"))
@example(case=tampered_case("lone high surrogate"))
def test_any_json_in_a_cursor_is_200_or_422(catalog: TestClient, case: tuple[str, str]) -> None:
    sort, cursor = case
    answered_without_crash(catalog.get("/v1/images", params={"sort": sort, "cursor": cursor}))


# Records as the catalog can hold them: any size a store can count, any printable name up to
# the longest, any moment to the millisecond in UTC.
NAMES = st.sampled_from(["a.png", "A.png", "été.png"]) | st.text(
    st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=MAX_NAME_LENGTH
)
MOMENTS = st.datetimes(timezones=st.just(UTC)).map(to_millis)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    """(width, height) whose product a store can hold, often small so that values tie."""
    height = draw(st.integers(1, 4) | st.integers(1, MAX_COUNT))
    widest = MAX_COUNT // height
    width = draw(st.integers(1, min(4, widest)) | st.integers(1, widest))
    return width, height


@st.composite
def records(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 1) -> list[ImageRecord]:
    """Distinct records with generated sizes, names and creation times."""
    count = draw(st.integers(min_size, max_size))
    made = []
    for n in range(count):
        width, height = draw(sizes())
        made.append(record(n, width=width, height=height, name=draw(NAMES), created=draw(MOMENTS)))
    return made


def value_of(item: ImagePublic, sort: str) -> int | str | datetime:
    value: int | str | datetime = getattr(item, sort.lstrip("-"))
    return value


@settings(CHEAP, max_examples=200)
@given(sort=st.sampled_from(SORT_KEYS), made=records())
def test_every_cursor_encode_makes_decodes_to_its_position(
    sort: SortKey, made: list[ImageRecord]
) -> None:
    item = made[0]
    cursor = encode_cursor(sort, item)
    assert decode_cursor(cursor, sort) == CursorPosition(value_of(item, sort), item.id)
    assert ImageQuery(sort=sort, cursor=cursor).after() == decode_cursor(cursor, sort)


@settings(CHEAP, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sort=st.sampled_from(SORT_KEYS), limit=st.integers(1, 3), made=records(max_size=6))
def test_paging_a_small_catalog_hands_out_cursors_that_round_trip(
    store: ImageStore, sort: SortKey, limit: int, made: list[ImageRecord]
) -> None:
    # The store's query is what GET /v1/images answers; one store per test, emptied after
    # each example, keeps a hundred catalogs cheap.
    descending = sort.startswith("-")
    expected = sorted(made, key=lambda r: (value_of(r, sort), r.id), reverse=descending)
    walked: list[str] = []
    cursor: str | None = None
    add_records(store, made)
    try:
        for _ in range(len(made)):
            page = store.query(ImageQuery(sort=sort, limit=limit, cursor=cursor))
            walked += [item.id for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
            last = page.items[-1]
            assert decode_cursor(cursor, sort) == CursorPosition(value_of(last, sort), last.id)
            assert encode_cursor(sort, last) == cursor
    finally:
        for item in made:
            store.delete(item.id)
    assert walked == [r.id for r in expected]
