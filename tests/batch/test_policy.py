"""Retry, backoff, Retry-After and spreading decisions, against processors faked at the wire."""

import asyncio
import random
from collections.abc import Callable

import httpx
import pytest

from darkroom_batch.processors import (
    Fail,
    JobFailed,
    ProcessorPool,
    Processors,
    Retry,
    RetryPolicy,
    decide,
)

A, B = "http://127.0.0.1:1", "http://127.0.0.1:2"
POLICY = RetryPolicy(retries=3, base_s=0.5, max_s=4.0)


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message}}, headers=headers
    )


def request() -> httpx.Request:
    return httpx.Request("POST", f"{A}/v1/process")


def test_success_is_done() -> None:
    assert decide(httpx.Response(200, content=b"img"), 0, POLICY, random.Random(1)) is None


@pytest.mark.parametrize(
    ("status", "code"),
    [(415, "unreadable_image"), (422, "invalid_parameter"), (413, "image_too_large"),
     (403, "wrong_key"), (500, "internal_error")],
)  # fmt: skip
def test_other_errors_fail_at_once_with_the_processors_message(status: int, code: str) -> None:
    decision = decide(error(status, code, "what went wrong"), 0, POLICY, random.Random(1))
    assert decision == Fail(f"{status} {code}: what went wrong")


def test_retry_after_is_honoured_over_a_shorter_backoff() -> None:
    decision = decide(error(429, "overloaded", "busy", **{"Retry-After": "3"}), 0, POLICY,
                      random.Random(1))  # fmt: skip
    assert isinstance(decision, Retry)
    assert decision.delay_s == 3.0
    assert not decision.set_aside


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(5)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [POLICY.backoff(attempt, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed value


def test_503_without_retry_after_backs_off() -> None:
    decision = decide(error(503, "unavailable", "down"), 2, POLICY, random.Random(1))
    assert isinstance(decision, Retry)
    assert 1.0 <= decision.delay_s <= 2.0


def test_connection_refused_sets_the_processor_aside_and_retries_at_once() -> None:
    refused = httpx.ConnectError("connection refused", request=request())
    assert decide(refused, 0, POLICY, random.Random(1)) == Retry(
        "ConnectError: connection refused", set_aside=True
    )


def test_a_dropped_connection_retries_at_once_without_setting_aside() -> None:
    dropped = httpx.RemoteProtocolError("server disconnected", request=request())
    decision = decide(dropped, 0, POLICY, random.Random(1))
    assert decision == Retry("RemoteProtocolError: server disconnected")


def test_a_read_timeout_backs_off() -> None:
    decision = decide(httpx.ReadTimeout("timed out", request=request()), 1, POLICY,
                      random.Random(1))  # fmt: skip
    assert isinstance(decision, Retry) and 0.5 <= decision.delay_s <= 1.0


def test_retries_are_bounded() -> None:
    overloaded = error(429, "overloaded", "busy")
    assert isinstance(decide(overloaded, POLICY.retries - 1, POLICY, random.Random(1)), Retry)
    assert decide(overloaded, POLICY.retries, POLICY, random.Random(1)) == Fail(
        "429 overloaded: busy (gave up after 4 attempts)"
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pool_takes_processors_in_turn() -> None:
    pool = ProcessorPool([A, B])
    assert [pool.pick() for _ in range(4)] == [(A, 0.0), (B, 0.0), (A, 0.0), (B, 0.0)]


def test_pool_skips_a_processor_set_aside_until_its_period_ends() -> None:
    clock = Clock()
    pool = ProcessorPool([A, B], set_aside_s=1.0, clock=clock)
    pool.set_aside(B)
    assert [pool.pick()[0] for _ in range(3)] == [A, A, A]
    clock.now += 1.01
    assert {pool.pick()[0] for _ in range(2)} == {A, B}


def test_pool_doubles_the_period_after_each_failure_and_forgets_on_success() -> None:
    clock = Clock()
    pool = ProcessorPool([A], set_aside_s=1.0, max_set_aside_s=3.0, clock=clock)
    waits = []
    for _ in range(3):
        pool.set_aside(A)
        waits.append(pool.pick()[1])
    assert waits == [1.0, 2.0, 3.0]
    pool.succeeded(A)
    assert pool.pick() == (A, 0.0)


def test_when_all_are_aside_the_pool_waits_for_the_soonest() -> None:
    clock = Clock()
    pool = ProcessorPool([A, B], set_aside_s=1.0, clock=clock)
    pool.set_aside(A)
    pool.set_aside(A)  # 2 s
    pool.set_aside(B)  # 1 s
    assert pool.pick() == (B, 1.0)


Handler = Callable[[httpx.Request], httpx.Response]


def run_jobs(handler: Handler, count: int, urls: list[str]) -> tuple[list[object], list[float]]:
    """Process ``count`` images through fake processors; each result (or failure) and the sleeps."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> list[object]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            processors = Processors(
                client, ProcessorPool(urls), POLICY, {"Authorization": "Bearer k"},
                random.Random(3), sleep,
            )  # fmt: skip
            results: list[object] = []
            for number in range(count):
                try:
                    results.append(await processors.process(b"%d" % number, {"ops": "invert"}))
                except JobFailed as failure:
                    results.append(failure.reason)
            return results

    return asyncio.run(go()), slept


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"out:" + request.content, headers={"X-Image-Format": "png"})


def test_jobs_are_spread_round_robin_with_the_key_and_pipeline() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    results, slept = run_jobs(handler, 4, [A, B])
    assert [str(r.url.copy_with(query=None)) for r in seen] == [
        f"{A}/v1/process", f"{B}/v1/process", f"{A}/v1/process", f"{B}/v1/process"
    ]  # fmt: skip
    assert {r.headers["Authorization"] for r in seen} == {"Bearer k"}
    assert {r.url.params["ops"] for r in seen} == {"invert"}
    assert [getattr(r, "content", None) for r in results] == [
        b"out:0",
        b"out:1",
        b"out:2",
        b"out:3",
    ]
    assert slept == []


def test_a_processor_that_refuses_connections_is_set_aside_and_its_job_redone_elsewhere() -> None:
    calls = {A: 0, B: 0}

    def handler(request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        calls[url] += 1
        if url == B:
            raise httpx.ConnectError("connection refused", request=request)
        return ok(request)

    results, slept = run_jobs(handler, 6, [A, B])
    assert [getattr(r, "processor", None) for r in results] == [A] * 6
    assert calls == {A: 6, B: 1}  # set aside after its first refusal, for the whole (quick) run
    assert slept == []


def test_retry_after_is_slept_then_the_job_succeeds() -> None:
    answers = iter([error(429, "overloaded", "busy", **{"Retry-After": "2"}),
                    error(503, "unavailable", "later", **{"Retry-After": "1"})])  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or ok(request)

    results, slept = run_jobs(handler, 1, [A])
    assert getattr(results[0], "content", None) == b"out:0"
    assert slept[0] == 2.0
    assert 1.0 <= slept[1] <= 1.0 + POLICY.base_s


def test_an_unreadable_image_fails_at_once_with_the_message() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return error(415, "unreadable_image", "not an image in a supported format")

    results, slept = run_jobs(handler, 1, [A, B])
    assert results == ["415 unreadable_image: not an image in a supported format"]
    assert len(calls) == 1 and slept == []


def test_an_overloaded_processor_is_given_up_on_after_the_retries() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return error(503, "unavailable", "down", **{"Retry-After": "1"})

    results, slept = run_jobs(handler, 1, [A])
    assert results == ["503 unavailable: down (gave up after 4 attempts)"]
    assert len(calls) == POLICY.retries + 1
    assert len(slept) == POLICY.retries and min(slept) >= 1.0


def test_timeouts_and_dropped_connections_are_retried() -> None:
    failures: list[Exception] = [
        httpx.ReadTimeout("slow", request=request()),
        httpx.ReadError("reset by peer", request=request()),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return ok(request)

    results, slept = run_jobs(handler, 1, [A])
    assert getattr(results[0], "content", None) == b"out:0"
    assert len(slept) == 1  # the timeout backs off; the dropped connection retries at once


def test_a_request_error_not_of_the_network_fails_at_once() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.DecodingError("bad gzip stream", request=request)

    results, slept = run_jobs(handler, 1, [A, B])
    assert results == ["DecodingError: bad gzip stream"]
    assert len(calls) == 1 and slept == []
