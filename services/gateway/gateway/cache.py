"""A bounded in-memory LRU cache of processed results."""

import time
from collections import OrderedDict

from gateway.clients import OperationInfo, ProcessorClient, Rendered

CacheKey = tuple[str, str, str]


class ResultCache:
    """Least-recently-used results, bounded by item count and total bytes.

    Keys are (image sha256, canonical pipeline, output format): an image's bytes never change under
    its sha256, so an entry never goes stale, it only ages out.
    """

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[CacheKey, Rendered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Rendered | None:
        """Return the cached result and mark it recently used, or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, value: Rendered) -> None:
        """Store a result, evicting the least recently used beyond the bounds."""
        if len(value.content) > self.max_bytes or self.max_items == 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old.content)
        self._entries[key] = value
        self.size += len(value.content)
        while len(self._entries) > self.max_items or self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted.content)


class OperationsCache:
    """The processor's operation list, refreshed after a time-to-live.

    The list changes only when the processor is redeployed, so a short TTL saves a round
    trip per page while still picking up a new processor version within seconds.
    """

    def __init__(self, *, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._value: list[OperationInfo] | None = None
        self._fetched_at = 0.0

    async def get(self, processor: ProcessorClient) -> list[OperationInfo]:
        """Return the cached list, fetching it again once it is older than the TTL."""
        now = time.monotonic()
        if self._value is None or now - self._fetched_at > self.ttl_s:
            self._value = await processor.operations()
            self._fetched_at = now
        return self._value
