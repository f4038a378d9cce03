"""A few Prometheus metrics, rendered in the text exposition format."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "darkroom_processor"


@dataclass
class Metrics:
    """Request counts, jobs in flight, job durations and time per stage, of one process."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    jobs_in_flight: int = 0
    job_seconds_sum: float = 0.0
    job_seconds_count: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    stage_count: Counter[str] = field(default_factory=Counter)

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
