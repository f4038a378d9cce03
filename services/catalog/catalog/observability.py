"""Request ids, log lines (text or JSON), per-request metrics and store timings of the catalog.

Every request carries an id: the caller's ``X-Request-ID`` when it is 1-128 characters
of ``[A-Za-z0-9._-]``, a new uuid4 hex otherwise. It is echoed on the response, kept in
a context variable for the request's lifetime, and added to every log line written
meanwhile (``RequestIdFilter``). ``RequestObserver`` is the application's outermost
layer, outside even the 500 handler, so every answer is counted, timed by route
template and logged as one access line: uvicorn's own access log runs outside the
request's context, so ``configure_logging`` turns it off.
"""

import functools
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.store import ImageStore

SERVICE = "catalog"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The label of every request no route matched, so unknown paths cannot grow the series.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Fields of an access line, beside those of every line.
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms")
_HANDLER_NAME = f"darkroom-{SERVICE}"

request_id: ContextVar[str | None] = ContextVar(f"{SERVICE}_request_id", default=None)
access_log = logging.getLogger(f"{SERVICE}.access")


def accepted_request_id(given: str | None) -> str:
    """Return ``given`` when it is a well-formed request id, else a new one (uuid4 hex)."""
    if given is not None and _VALID_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being handled (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` to the record; never drops it."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and access fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single-line JSON object."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A plain line: time, level, logger, request id in brackets (``-`` outside a request)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s [%(request_label)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one line of text."""
        record.request_label = getattr(record, "request_id", None) or "-"
        return super().format(record)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes each line to ``sys.stderr`` as it is when the line is written."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the current stderr (test runners and daemons replace it)."""
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(log_format: str) -> None:
    """Write the catalog's log lines, and uvicorn's errors, to stderr as text or JSON lines.

    Calling it again (another app in the same process) replaces the handler it added.
    """
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in (SERVICE, "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
    logging.getLogger(SERVICE).setLevel(logging.INFO)
    # uvicorn's error lines (tracebacks of failed requests among them) take this format only.
    logging.getLogger("uvicorn.error").propagate = False
    # RequestObserver writes the access line, with the request id uvicorn's would lack.
    logging.getLogger("uvicorn.access").disabled = True


class HttpMetrics:
    """Requests by route template, status and method, and their latency, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"darkroom_{SERVICE}_requests",
            "HTTP requests by route template, status and method.",
            ["route", "status", "method"],
            registry=registry,
        )
        self.seconds = Histogram(
            f"darkroom_{SERVICE}_request_seconds",
            "Time from request to the end of the response, by route template and method.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one finished request."""
        self.requests.labels(route, str(status), method).inc()
        self.seconds.labels(route, method).observe(seconds)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request, or ``unmatched``."""
    # The router writes the matched route into this same scope dict.
    return str(getattr(scope.get("route"), "path", UNMATCHED))


class RequestObserver:
    """Plain ASGI middleware: request id in and out, then metrics and an access line."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request under its id, echoing the id and recording the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        current = accepted_request_id(given)
        token = request_id.set(current)
        echoed = (b"x-request-id", current.encode())
        status = 500
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message["headers"] = [*headers, echoed]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._finish(scope, status, time.perf_counter() - started)
        # Kept when the request failed, so the server's own report of the error carries it.
        request_id.reset(token)

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        """Record one answered request in the metrics and the access log."""
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = route_template(scope)
        self.metrics.observe(route, method, status, seconds)
        duration_ms = round(seconds * 1000, 1)
        access_log.info(
            "%s %s %d %.1f ms",
            scope["method"],
            scope["path"],
            status,
            duration_ms,
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
            },
        )


class ObservedFastAPI(FastAPI):
    """FastAPI with ``RequestObserver`` outside every other layer, the 500 handler included.

    Added as ordinary middleware it would sit inside Starlette's error layer, and a 500
    would leave without the request id, uncounted.
    """

    def build_middleware_stack(self) -> ASGIApp:
        """Wrap the whole stack in the observer of ``state.http_metrics``."""
        metrics: HttpMetrics = self.state.http_metrics
        return RequestObserver(super().build_middleware_stack(), metrics)


STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def store_seconds(registry: CollectorRegistry) -> Histogram:
    """The histogram of store calls by method name, in ``registry``."""
    return Histogram(
        f"darkroom_{SERVICE}_store_seconds",
        "Time spent in each store call, by store method (failed calls included).",
        ["operation"],
        buckets=STORE_BUCKETS,
        registry=registry,
    )


class TimedStore:
    """A proxy of any ImageStore that times each of its method calls, by method name.

    Every public method is timed, whatever the backend and whichever methods the
    protocol gains; other attributes pass through untouched.
    """

    def __init__(self, store: ImageStore, seconds: Histogram) -> None:
        self._store = store
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        """The store's attribute; a public method comes back wrapped in a timer."""
        attribute = getattr(self._store, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        timer = self._seconds.labels(name)

        @functools.wraps(attribute)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                timer.observe(time.perf_counter() - started)

        return timed


def timed_store(store: ImageStore, seconds: Histogram) -> ImageStore:
    """``store`` behind a ``TimedStore``, typed as the protocol it forwards."""
    return cast(ImageStore, TimedStore(store, seconds))
