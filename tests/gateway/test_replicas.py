"""Processor replicas: requests spread over every configured URL and resolved address."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.replicas import Replicas, processor_urls


class Recording(httpx.AsyncBaseTransport):
    """Answers every request, remembering where it went; refuses connections to ``down``."""

    def __init__(self, *, down: set[str] | None = None, delay_s: float = 0.0) -> None:
        self.down = down or set()
        self.delay_s = delay_s
        self.sent: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = f"{request.url.host}:{request.url.port}"
        if address in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        await asyncio.sleep(self.delay_s)
        self.sent.append((address, request.headers["host"]))
        return httpx.Response(200, content=await request.aread())


def spread(replicas: Replicas, requests: int, *, url: str = "http://processor:8002") -> None:
    async def send() -> None:
        async with httpx.AsyncClient(transport=replicas, base_url=url) as client:
            for number in range(requests):
                response = await client.post("/v1/process", content=b"%d" % number)
                assert response.content == b"%d" % number

    asyncio.run(send())


def test_the_setting_is_a_comma_separated_list() -> None:
    assert processor_urls("http://a:1") == ["http://a:1"]
    assert processor_urls(" http://a:1/, http://b:2 ,,http://a:1") == ["http://a:1", "http://b:2"]
    with pytest.raises(ValueError, match="names no processor"):
        processor_urls(" , ")


def test_requests_take_turns_over_the_listed_urls() -> None:
    inner = Recording()
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002", "http://127.0.0.3:9003"]
    spread(Replicas(urls, inner), 9, url=urls[0])
    assert Counter(address for address, _ in inner.sent) == {
        "127.0.0.1:9001": 3,
        "127.0.0.2:9002": 3,
        "127.0.0.3:9003": 3,
    }


def test_a_name_is_spread_over_every_address_it_resolves_to_and_resolved_again() -> None:
    answers = [["10.0.0.1", "10.0.0.2", "10.0.0.3"]]

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("processor", 8002)
        return answers[0]

    inner = Recording()
    replicas = Replicas(["http://processor:8002"], inner, resolver=resolver, resolve_every_s=0)
    spread(replicas, 6)
    assert Counter(address for address, _ in inner.sent) == {
        "10.0.0.1:8002": 2,
        "10.0.0.2:8002": 2,
        "10.0.0.3:8002": 2,
    }
    # Each request still names the service, as a request to the name would.
    assert {host for _, host in inner.sent} == {"processor:8002"}

    answers[0] = ["10.0.0.2", "10.0.0.4"]  # scaled: one replica gone, one new
    inner.sent.clear()
    spread(replicas, 4)
    assert Counter(address for address, _ in inner.sent) == {"10.0.0.2:8002": 2, "10.0.0.4:8002": 2}


def test_a_failed_lookup_keeps_the_addresses_known() -> None:
    answers: list[list[str] | None] = [["10.0.0.1", "10.0.0.2"]]

    async def resolver(host: str, port: int) -> list[str]:
        if answers[0] is None:
            raise OSError("temporary failure in name resolution")
        return answers[0]

    inner = Recording()
    replicas = Replicas(["http://processor:8002"], inner, resolver=resolver, resolve_every_s=0)
    spread(replicas, 2)
    answers[0] = None
    spread(replicas, 4)
    assert Counter(address for address, _ in inner.sent) == {"10.0.0.1:8002": 3, "10.0.0.2:8002": 3}


def test_a_replica_that_refuses_connections_is_passed_over_then_tried_again() -> None:
    inner = Recording(down={"127.0.0.2:9002"})
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002"]
    replicas = Replicas(urls, inner, set_aside_s=60)
    spread(replicas, 6, url=urls[0])
    # Every request answered, all by the replica that is up; the other was tried once.
    assert Counter(address for address, _ in inner.sent) == {"127.0.0.1:9001": 6}
    down = next(e for e in replicas.endpoints if e.host == "127.0.0.2")
    assert down.sent == 0 and down.set_aside_until > 0

    inner.down.clear()
    down.set_aside_until = 0  # its time set aside is over
    inner.sent.clear()
    spread(replicas, 4, url=urls[0])
    served = Counter(address for address, _ in inner.sent)
    assert served == {"127.0.0.1:9001": 2, "127.0.0.2:9002": 2}


def test_with_every_replica_down_the_connection_error_is_raised() -> None:
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002"]
    inner = Recording(down={"127.0.0.1:9001", "127.0.0.2:9002"})
    with pytest.raises(httpx.ConnectError):
        spread(Replicas(urls, inner), 1, url=urls[0])


def test_a_streamed_body_is_never_sent_twice() -> None:
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002"]
    inner = Recording(down={"127.0.0.1:9001"})

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async def send() -> None:
        async with httpx.AsyncClient(transport=Replicas(urls, inner), base_url=urls[0]) as client:
            await client.post("/v1/process", content=body())

    with pytest.raises(httpx.ConnectError):
        asyncio.run(send())
    assert inner.sent == []


def test_a_new_request_goes_to_the_replica_with_fewest_in_flight() -> None:
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002", "http://127.0.0.3:9003"]
    inner = Recording(delay_s=0.05)
    replicas = Replicas(urls, inner)

    async def send() -> None:
        async with httpx.AsyncClient(transport=replicas, base_url=urls[0]) as client:
            await asyncio.gather(*(client.get("/healthz") for _ in range(6)))

    asyncio.run(send())
    # Six at once over three replicas: two each, never three on one.
    assert Counter(address for address, _ in inner.sent) == {
        "127.0.0.1:9001": 2,
        "127.0.0.2:9002": 2,
        "127.0.0.3:9003": 2,
    }


def test_turns_are_taken_per_path_so_a_render_and_its_job_do_not_move_in_step() -> None:
    urls = ["http://127.0.0.1:9001", "http://127.0.0.2:9002"]
    inner = Recording()

    async def send() -> None:
        async with httpx.AsyncClient(transport=Replicas(urls, inner), base_url=urls[0]) as client:
            for _ in range(4):  # as a render does: the canonical pipeline, then the job
                await client.get("/v1/pipeline")
                await client.post("/v1/process", content=b"x")

    asyncio.run(send())
    jobs = Counter(address for address, _ in inner.sent[1::2])
    assert jobs == {"127.0.0.1:9001": 2, "127.0.0.2:9002": 2}
