"""The catalog as a source: pages of a query, followed by cursor, and each image's original."""

import asyncio
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from darkroom_batch.processors import (
    Fail,
    JobFailed,
    RetryPolicy,
    Sleep,
    decide,
    describe,
    error_message,
    sent,
)
from darkroom_batch.sources import UsageError

PAGE_SIZE = 200
# Set by the run itself: a query that names them would page wrongly.
RESERVED = frozenset({"limit", "cursor"})
# The count endpoint takes the filters only.
NOT_FILTERS = RESERVED | {"sort"}


def parse_query(text: str) -> list[tuple[str, str]]:
    """``min_width=1920&orientation=landscape`` as pairs; UsageError for limit or cursor."""
    pairs = parse_qsl(text.lstrip("?"), keep_blank_values=True, strict_parsing=bool(text))
    reserved = sorted({key for key, _ in pairs} & RESERVED)
    if reserved:
        raise UsageError(f"--query may not set {', '.join(reserved)}: the run pages by itself")
    return pairs


@dataclass
class Catalog:
    """A catalog service, read with retries on overload and lost connections."""

    client: httpx.AsyncClient
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Sleep = asyncio.sleep

    async def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> httpx.Response:
        """GET with retries; JobFailed with the reason when it cannot succeed."""
        attempt = 0
        while True:
            outcome = await sent(
                self.client.get(f"{self.url}{path}", params=list(params), headers=self.headers)
            )
            decision = decide(outcome, attempt, self.policy, self.rng)
            if decision is None:
                assert isinstance(outcome, httpx.Response)
                return outcome
            if isinstance(decision, Fail):
                raise JobFailed(decision.reason)
            await self.sleep(max(decision.delay_s, self.policy.backoff(attempt, self.rng)))
            attempt += 1

    async def first_page(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        """The query's first page; UsageError when the catalog is down or rejects the query."""
        try:
            response = await self.client.get(
                f"{self.url}/v1/images",
                params=[*query, ("limit", str(PAGE_SIZE))],
                headers=self.headers,
            )
        except httpx.TransportError as error:
            raise UsageError(f"catalog at {self.url} unreachable: {describe(error)}") from None
        if not response.is_success:
            raise UsageError(f"catalog rejected --query: {error_message(response)}")
        page: dict[str, Any] = response.json()
        return page

    async def count(self, query: list[tuple[str, str]]) -> int | None:
        """How many images match, when the catalog counts them exactly; else None."""
        filters = [(key, value) for key, value in query if key not in NOT_FILTERS]
        try:
            answer = (await self._get("/v1/images/count", filters)).json()
        except (JobFailed, ValueError):
            return None
        return int(answer["count"]) if answer.get("exact") else None

    async def images(
        self, query: list[tuple[str, str]], first: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record matching the query, from its first page on."""
        page = first
        while True:
            for record in page["items"]:
                yield record
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params = [*query, ("limit", str(PAGE_SIZE)), ("cursor", cursor)]
            page = (await self._get("/v1/images", params)).json()

    async def content(self, image_id: str) -> bytes:
        """An image's original bytes."""
        return (await self._get(f"/v1/images/{image_id}/content")).content
