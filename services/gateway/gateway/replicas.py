"""Processor replicas: requests spread over every address the processor URLs name.

``GATEWAY_PROCESSOR_URL`` may list several base URLs, comma-separated, and each host
name may resolve to several addresses (a scaled compose service, a headless
Kubernetes Service). A pooled keep-alive connection sticks to one address, so
resolving once per connection would send every render to one replica. ``Replicas``
is the processor client's transport instead: it resolves each host again every few
seconds, sends each request to the address with the fewest requests in flight
(round-robin among equals) over its own keep-alive connections, and sets an address
aside for a moment when it refuses connections, trying the next one; a request is
only ever sent again when it never reached a replica.
"""

import asyncio
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

# How often host names are resolved again: replicas come and go with scaling.
RESOLVE_EVERY_S = 5.0
# How long an address that refused a connection is passed over.
SET_ASIDE_S = 2.0


def processor_urls(setting: str) -> list[str]:
    """The base URLs of a comma-separated setting, in order, without blanks or repeats."""
    urls: list[str] = []
    for part in setting.split(","):
        url = part.strip().rstrip("/")
        if url and url not in urls:
            urls.append(url)
    if not urls:
        raise ValueError("GATEWAY_PROCESSOR_URL names no processor")
    return urls


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_address(host: str) -> bool:
    """Whether ``host`` is an IP address literal rather than a name to resolve."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(eq=False)
class Endpoint:
    """One replica's address and port, and what the transport knows of it now."""

    host: str
    port: int
    in_flight: int = 0
    set_aside_until: float = 0.0
    sent: int = 0

    def available(self, now: float) -> bool:
        """Whether the endpoint is not set aside after a refused connection."""
        return now >= self.set_aside_until


@dataclass(eq=False)
class Origin:
    """One configured base URL and the endpoints its host resolved to."""

    url: httpx.URL
    endpoints: list[Endpoint] = field(default_factory=list)
    resolved_at: float = float("-inf")


class Replicas(httpx.AsyncBaseTransport):
    """A transport spreading requests over the processor replicas (see the module docstring)."""

    def __init__(
        self,
        urls: Sequence[str],
        inner: httpx.AsyncBaseTransport,
        *,
        resolve_every_s: float = RESOLVE_EVERY_S,
        set_aside_s: float = SET_ASIDE_S,
        resolver: Callable[[str, int], Awaitable[list[str]]] = resolve,
    ) -> None:
        self.origins = [Origin(httpx.URL(url)) for url in urls]
        self.inner = inner
        self.resolve_every_s = resolve_every_s
        self.set_aside_s = set_aside_s
        self.resolver = resolver
        # Turns are taken per path: a render's canonical-pipeline call and its job must not
        # alternate in step, or every job would land on the same replica.
        self._turns: Counter[str] = Counter()
        self._lock = asyncio.Lock()

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every endpoint known now, over all origins."""
        return [endpoint for origin in self.origins for endpoint in origin.endpoints]

    async def _resolve(self, origin: Origin) -> None:
        host = origin.url.host
        port = origin.url.port or (443 if origin.url.scheme == "https" else 80)
        if is_address(host):
            addresses = [host]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError:
                addresses = []
            # A failed lookup keeps what was known; with nothing known, the connection fails.
            addresses = addresses or [e.host for e in origin.endpoints] or [host]
        known = {endpoint.host: endpoint for endpoint in origin.endpoints}
        origin.endpoints = [known.get(address) or Endpoint(address, port) for address in addresses]
        origin.resolved_at = time.monotonic()

    async def _refresh(self) -> None:
        now = time.monotonic()
        stale = [o for o in self.origins if now - o.resolved_at >= self.resolve_every_s]
        if not stale:
            return
        async with self._lock:
            for origin in stale:
                if time.monotonic() - origin.resolved_at >= self.resolve_every_s:
                    await self._resolve(origin)

    def pick(self, tried: set[int], path: str = "/") -> Endpoint:
        """The endpoint with the fewest requests in flight, round-robin among equals.

        Endpoints set aside, or already tried for this request, are passed over while
        any other remains.
        """
        now = time.monotonic()
        endpoints = self.endpoints
        count = len(endpoints)
        start = self._turns[path] % count
        self._turns[path] += 1
        ordered = endpoints[start:] + endpoints[:start]
        fresh = [e for e in ordered if id(e) not in tried] or ordered
        candidates = [e for e in fresh if e.available(now)] or fresh
        return min(candidates, key=lambda endpoint: endpoint.in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request to one replica; on a refused connection, to the next."""
        await self._refresh()
        tried: set[int] = set()
        # A request body that is a stream cannot be read twice: such a request gets one try.
        attempts = len(self.endpoints) if isinstance(request.stream, httpx.ByteStream) else 1
        while True:
            endpoint = self.pick(tried, request.url.path)
            tried.add(id(endpoint))
            routed = httpx.Request(
                request.method,
                request.url.copy_with(host=endpoint.host, port=endpoint.port),
                headers=request.headers,  # keeps the Host header of the configured URL
                stream=request.stream,
                extensions=request.extensions,
            )
            endpoint.in_flight += 1
            try:
                response = await self.inner.handle_async_request(routed)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                endpoint.set_aside_until = time.monotonic() + self.set_aside_s
                if len(tried) >= attempts:
                    raise
                continue
            finally:
                endpoint.in_flight -= 1
            endpoint.sent += 1
            return response

    async def aclose(self) -> None:
        """Close the connections to every replica."""
        await self.inner.aclose()
