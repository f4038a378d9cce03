"""In-memory caches: bounded LRUs of results and originals, and lists kept for a short TTL."""

import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from gateway.clients import CameraCount, OperationInfo, Original, Rendered

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
CacheKey = tuple[str, str, str]
# An OrderedDict entry's hash slot and linked-list node, beyond the objects it points to.
_LINK_BYTES = 100


def held_bytes(key: Hashable, value: object) -> int:
    """The memory an entry really holds: its bytes, strings, objects and bookkeeping."""
    parts = key if isinstance(key, tuple) else ()
    fields = vars(value)
    objects = (key, *parts, value, fields, *fields.values())
    return sum(sys.getsizeof(part) for part in objects) + _LINK_BYTES


class LruCache(Generic[K, V]):
    """Least-recently-used entries, bounded by item count and total bytes.

    Entries are keyed by content hashes, so an entry never goes stale, it only ages out.
    ``size`` counts what the entries really hold (``held_bytes``), not just the image
    bytes, so ``max_bytes`` is a bound on memory.
    """

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """Return the cached value and mark it recently used, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V) -> None:
        """Store a value, evicting the least recently used beyond the bounds."""
        held = held_bytes(key, value)
        if held > self.max_bytes or self.max_items == 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (value, held)
        self.size += held
        while len(self._entries) > self.max_items or self.size > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted


# Results by (image sha256, canonical pipeline, output format).
ResultCache = LruCache[CacheKey, Rendered]
# Originals by their sha256: renders of one photo with new parameters skip the catalog.
OriginalCache = LruCache[str, Original]


class TtlValue(Generic[V]):
    """One value fetched from a backend, fetched again once older than a time-to-live.

    The processor's operation list changes only when it is redeployed, the catalog's list
    of cameras only as photos from a new camera arrive; both are shown on every page, so a
    short TTL saves a round trip per page while still picking up a change within seconds.
    """

    def __init__(self, *, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._value: V | None = None
        self._fetched_at = 0.0

    async def get(self, fetch: Callable[[], Awaitable[V]]) -> V:
        """Return the cached value, fetching it again once it is older than the TTL."""
        now = time.monotonic()
        if self._value is None or now - self._fetched_at > self.ttl_s:
            self._value = await fetch()
            self._fetched_at = now
        return self._value


OperationsCache = TtlValue[list[OperationInfo]]
CamerasCache = TtlValue[list[CameraCount]]
