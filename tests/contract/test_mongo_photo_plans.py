"""On a real MongoDB server (MONGO_URL), photo filters and sort=taken are served by indexes.

mongomock has no query planner, so these run only against a server.
"""

from collections.abc import Iterator

import pytest

from catalog.models import CountQuery, ImageQuery
from catalog.store.bulk import add_records, drop, explain
from catalog.store.mongo import MongoImageStore, _match
from tests.catalog.test_photo_queries import RECORDS
from tests.contract.stores import MONGO_URL, server_store
from tests.contract.test_mongo_plans import stages

pytestmark = pytest.mark.skipif(not MONGO_URL, reason="MONGO_URL is not set: no MongoDB server")


@pytest.fixture(scope="module")
def store() -> Iterator[MongoImageStore]:
    mongo = server_store()[0]
    add_records(mongo, RECORDS)
    yield mongo
    drop(mongo)
    mongo.close()


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"sort": "taken"}, "sort_taken"),
        ({"sort": "-taken"}, "sort_taken"),
        ({"sort": "-taken", "taken_after": "2024-01-01"}, "sort_taken"),
        ({"camera": "Canon EOS R5"}, "camera_created"),
        ({"colour": "blue"}, "colour_created"),
        ({"has_location": True}, "has_location_created"),
    ],
)
@pytest.mark.parametrize("paged", [False, True])
def test_pages_of_photo_filters_walk_an_index_without_sorting(
    store: MongoImageStore, params: dict[str, object], index: str, paged: bool
) -> None:
    cursor = None
    if paged:
        cursor = store.query(ImageQuery.model_validate({**params, "limit": 1})).next_cursor
        assert cursor is not None
    plan = explain(store, ImageQuery.model_validate({**params, "cursor": cursor}))
    winning = list(stages(plan["queryPlanner"]["winningPlan"]))
    assert not [s for s in winning if s["stage"] == "SORT"], winning
    assert [s for s in winning if s.get("indexName") == index], winning


@pytest.mark.parametrize(
    "params",
    [
        {"camera": "Canon EOS R5"},
        {"colour": "red"},
        {"has_location": True},
        {"taken_after": "2023-01-01", "taken_before": "2023-12-31"},
    ],
)
def test_counts_of_photo_filters_scan_an_index_not_the_collection(
    store: MongoImageStore, params: dict[str, object]
) -> None:
    filter = _match(CountQuery.model_validate(params))
    plan = store.database.command("explain", {"count": "images", "query": filter})
    winning = list(stages(plan["queryPlanner"]["winningPlan"]))
    assert any(s["stage"] in ("IXSCAN", "COUNT_SCAN") for s in winning), winning
    assert not [s for s in winning if s["stage"] == "COLLSCAN"], winning
