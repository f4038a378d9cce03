"""On a real MongoDB server (MONGO_URL), every sort is served by an index, never a SORT stage.

mongomock has no query planner, so these run only against a server.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from catalog.models import SORT_KEYS, ImageQuery, SortKey
from catalog.store.bulk import add_records, drop, explain
from catalog.store.mongo import MongoImageStore
from tests.contract.stores import MONGO_URL, server_store
from tests.contract.test_image_store import bulk_records

pytestmark = pytest.mark.skipif(not MONGO_URL, reason="MONGO_URL is not set: no MongoDB server")


@pytest.fixture(scope="module")
def store() -> Iterator[MongoImageStore]:
    mongo = server_store()[0]
    add_records(mongo, bulk_records(500))
    yield mongo
    drop(mongo)
    mongo.close()


def stages(plan: Any) -> Iterator[dict[str, Any]]:
    """Every stage of an explain() plan tree."""
    if isinstance(plan, dict):
        if "stage" in plan:
            yield plan
        for value in plan.values():
            yield from stages(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from stages(value)


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("paged", [False, True])
def test_sorts_walk_their_index(store: MongoImageStore, sort: SortKey, paged: bool) -> None:
    cursor = store.query(ImageQuery(sort=sort, limit=7)).next_cursor if paged else None
    plan = explain(store, ImageQuery(sort=sort, limit=50, cursor=cursor))
    winning = list(stages(plan["queryPlanner"]["winningPlan"]))
    assert not [s for s in winning if s["stage"] == "SORT"], winning
    field = sort.lstrip("-")
    assert [s for s in winning if s.get("indexName") == f"sort_{field}"], winning


@pytest.mark.parametrize("sort", SORT_KEYS)
def test_range_queries_do_not_sort_in_memory_when_the_sort_field_is_filtered(
    store: MongoImageStore, sort: SortKey
) -> None:
    field = sort.lstrip("-")
    filters = {f"min_{field}": 101} if field in ("width", "height", "pixels") else {}
    plan = explain(store, ImageQuery.model_validate({"sort": sort, **filters}))
    winning = list(stages(plan["queryPlanner"]["winningPlan"]))
    assert not [s for s in winning if s["stage"] == "SORT"], winning
