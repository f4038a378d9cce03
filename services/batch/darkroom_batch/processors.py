"""Calls to processors: round-robin spreading, setting aside the unreachable, bounded retries.

What happens after one attempt is decided by ``decide`` alone, a pure function of the
attempt's outcome and number, so the policy can be read (and tested) in one place:

- 2xx: done;
- cannot connect: the processor is set aside for a while and the job goes to another;
- connection dropped mid-request (a processor killed, a stale keep-alive): retried at once;
- timeout, 429, 502, 503, 504: retried after an exponential backoff with jitter, and never
  sooner than the response's ``Retry-After``;
- any other status (unreadable image, parameter out of range, wrong key): fails at once
  with the processor's message;
- after ``retries`` retries the job fails with the last reason.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one request is retried."""

    retries: int = 5
    base_s: float = 0.25
    max_s: float = 10.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt + 1``: doubling, capped, half jittered."""
        ceiling = min(self.max_s, self.base_s * 2.0**attempt)
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay_s``; ``set_aside``: the processor could not be reached."""

    reason: str
    delay_s: float = 0.0
    set_aside: bool = False


@dataclass(frozen=True, slots=True)
class Fail:
    """Give up on this input for this reason."""

    reason: str


Outcome = httpx.Response | httpx.TransportError


def error_message(response: httpx.Response) -> str:
    """``status code: message`` from a Darkroom error body, or the status and its text."""
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return f"{response.status_code} {text}"


def retry_after_s(response: httpx.Response) -> float:
    """The response's ``Retry-After`` in seconds (0 when absent or given as a date)."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def describe(error: httpx.RequestError) -> str:
    """A request error as one short line."""
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text


async def sent(request: Awaitable[httpx.Response]) -> Outcome:
    """The response, or the transport error a retry may cure; JobFailed for any other error."""
    try:
        return await request
    except httpx.TransportError as error:
        return error
    except httpx.RequestError as error:  # not the network's fault: a retry would repeat it
        raise JobFailed(describe(error)) from None


def decide(
    outcome: Outcome, attempt: int, policy: RetryPolicy, rng: random.Random
) -> Retry | Fail | None:
    """What to do after attempt number ``attempt`` (0 for the first): None means done."""
    retry: Retry
    if isinstance(outcome, httpx.Response):
        if outcome.is_success:
            return None
        reason = error_message(outcome)
        if outcome.status_code not in RETRYABLE_STATUSES:
            return Fail(reason)
        delay = max(retry_after_s(outcome), policy.backoff(attempt, rng))
        retry = Retry(reason, delay_s=delay)
    elif isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout):
        retry = Retry(describe(outcome), set_aside=True)
    elif isinstance(outcome, httpx.TimeoutException):
        retry = Retry(describe(outcome), delay_s=policy.backoff(attempt, rng))
    else:
        retry = Retry(describe(outcome))
    if attempt >= policy.retries:
        return Fail(f"{retry.reason} (gave up after {attempt + 1} attempts)")
    return retry


@dataclass
class ProcessorPool:
    """Processor URLs taken in turn, skipping the ones set aside after failing to connect."""

    urls: list[str]
    set_aside_s: float = 1.0
    max_set_aside_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _next: int = 0
    _aside_until: dict[str, float] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)

    def pick(self) -> tuple[str, float]:
        """The next processor in turn that is not set aside, and how long to wait for it.

        The wait is 0 unless every processor is set aside; then it is the one back soonest.
        """
        now = self.clock()
        count = len(self.urls)
        for step in range(count):
            index = (self._next + step) % count
            url = self.urls[index]
            if self._aside_until.get(url, 0.0) <= now:
                self._next = index + 1
                return url, 0.0
        url = min(self.urls, key=lambda u: self._aside_until[u])
        return url, self._aside_until[url] - now

    def set_aside(self, url: str) -> None:
        """Keep jobs off ``url`` for a while, twice as long after each consecutive failure."""
        failures = self._failures.get(url, 0) + 1
        self._failures[url] = failures
        period = min(self.max_set_aside_s, self.set_aside_s * 2 ** (failures - 1))
        self._aside_until[url] = self.clock() + period

    def succeeded(self, url: str) -> None:
        """``url`` answered: it takes jobs again at once."""
        self._failures.pop(url, None)
        self._aside_until.pop(url, None)

    def is_aside(self, url: str) -> bool:
        """Whether ``url`` is set aside right now."""
        return self._aside_until.get(url, 0.0) > self.clock()


class JobFailed(Exception):
    """One input could not be processed; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Processed:
    """A processor's result: the bytes, their format and which processor made them."""

    content: bytes
    format: str
    processor: str


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Processors:
    """Sends images to a pool of processors, retrying as ``decide`` says."""

    client: httpx.AsyncClient
    pool: ProcessorPool
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    headers: Mapping[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Sleep = asyncio.sleep

    async def process(self, data: bytes, params: Mapping[str, str]) -> Processed:
        """The processed image; JobFailed with the reason when the input cannot be done."""
        attempt = 0
        while True:
            url, wait_s = self.pool.pick()
            if wait_s > 0:
                await self.sleep(wait_s)
            outcome = await sent(
                self.client.post(
                    f"{url}/v1/process",
                    params=params,
                    content=data,
                    headers={**self.headers, "Content-Type": "application/octet-stream"},
                )
            )
            decision = decide(outcome, attempt, self.policy, self.rng)
            if decision is None:
                assert isinstance(outcome, httpx.Response)
                self.pool.succeeded(url)
                image_format = outcome.headers.get("X-Image-Format", "")
                return Processed(outcome.content, image_format, url)
            if isinstance(decision, Fail):
                raise JobFailed(decision.reason)
            if decision.set_aside:
                self.pool.set_aside(url)
            elif isinstance(outcome, httpx.Response):
                self.pool.succeeded(url)
            if decision.delay_s > 0:
                await self.sleep(decision.delay_s)
            attempt += 1
