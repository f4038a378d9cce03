"""A few Prometheus metrics, rendered in the text exposition format."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "darkroom_processor"


@dataclass
class LaneStats:
    """One lane of job slots: its size, and its jobs waiting, running and finished."""

    slots: int
    waiting: int = 0
    running: int = 0
    finished: int = 0


@dataclass
class Metrics:
    """Request counts, jobs per lane, job durations and time per stage, of one process."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    lanes: dict[str, LaneStats] = field(default_factory=dict)
    job_seconds_sum: float = 0.0
    job_seconds_count: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    stage_count: Counter[str] = field(default_factory=Counter)

    @property
    def jobs_in_flight(self) -> int:
        """Jobs holding a slot now, over every lane."""
        return sum(lane.running for lane in self.lanes.values())

    def observe_request(self, route: str, status: int) -> None:
        """Count one finished request."""
        self.requests[(route, status)] += 1

    def observe_job(self, seconds: float) -> None:
        """Record the duration of one finished job."""
        self.job_seconds_sum += seconds
        self.job_seconds_count += 1

    def observe_stages(self, timings: dict[str, float]) -> None:
        """Record the seconds one job spent decoding, in each operation and encoding."""
        for stage, seconds in timings.items():
            self.stage_seconds[stage] += seconds
            self.stage_count[stage] += 1

    def render(self) -> str:
        """Return the metrics in the Prometheus text format."""
        lines = [
            f"# HELP {PREFIX}_requests_total HTTP requests by route template and status.",
            f"# TYPE {PREFIX}_requests_total counter",
        ]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'{PREFIX}_requests_total{{route="{route}",status="{status}"}} {count}')
        lines += [
            f"# HELP {PREFIX}_jobs_in_flight Image jobs running now.",
            f"# TYPE {PREFIX}_jobs_in_flight gauge",
            f"{PREFIX}_jobs_in_flight {self.jobs_in_flight}",
        ]
        lines += self._render_lanes()
        lines += [
            f"# HELP {PREFIX}_job_seconds Time spent decoding, processing and encoding.",
            f"# TYPE {PREFIX}_job_seconds summary",
            f"{PREFIX}_job_seconds_sum {self.job_seconds_sum}",
            f"{PREFIX}_job_seconds_count {self.job_seconds_count}",
            f"# HELP {PREFIX}_stage_seconds Time per job stage: decode, each operation, encode.",
            f"# TYPE {PREFIX}_stage_seconds summary",
        ]
        for stage in sorted(self.stage_count):
            label = f'{{stage="{stage}"}}'
            lines.append(f"{PREFIX}_stage_seconds_sum{label} {self.stage_seconds[stage]}")
            lines.append(f"{PREFIX}_stage_seconds_count{label} {self.stage_count[stage]}")
        return "\n".join(lines) + "\n"

    def _render_lanes(self) -> list[str]:
        """The per-lane gauges and counter, one sample per lane."""
        series = [
            ("lane_jobs_waiting", "gauge", "Image jobs waiting for a slot, by lane.", "waiting"),
            ("lane_jobs_in_flight", "gauge", "Image jobs running now, by lane.", "running"),
            ("lane_jobs_total", "counter", "Image jobs finished, by lane.", "finished"),
        ]
        lines = []
        for name, kind, text, attribute in series:
            lines += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} {kind}"]
            for lane, stats in sorted(self.lanes.items()):
                lines.append(f'{PREFIX}_{name}{{lane="{lane}"}} {getattr(stats, attribute)}')
        return lines


class RequestMetrics:
    """Plain ASGI middleware counting finished HTTP requests by route template and status.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) would do the
    same through a task and a memory stream per request; this only watches the
    response start go by.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the status of the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            # The router writes the matched route into this same scope dict.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.observe_request(route, status)
