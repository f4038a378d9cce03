"""The processor's job metrics: lanes, job durations, time per stage and per operation.

Each ``Metrics`` has a registry of its own (tests build many applications in one
process); ``observability.HttpMetrics`` adds the request counts to the same registry,
and ``/metrics`` renders it.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, Summary, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "darkroom_processor"
# Operations take from a fraction of a millisecond (a flip) to seconds (a large median).
OPERATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class LaneStats:
    """One lane of job slots: its size, and its jobs waiting, running and finished."""

    slots: int
    waiting: int = 0
    running: int = 0
    finished: int = 0


class Metrics:
    """Jobs per lane, job durations, time per stage and per operation, of one application."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.lanes: dict[str, LaneStats] = {}
        self.job_seconds = Summary(
            f"{PREFIX}_job_seconds",
            "Time spent decoding, processing and encoding.",
            registry=self.registry,
        )
        self.stage_seconds = Summary(
            f"{PREFIX}_stage_seconds",
            "Time per job stage: decode, each operation, encode.",
            ["stage"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            f"{PREFIX}_operation_seconds",
            "Time one job spent in an operation (the sum when a pipeline repeats it).",
            ["operation"],
            buckets=OPERATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LaneCollector(self))

    @property
    def jobs_in_flight(self) -> int:
        """Jobs holding a slot now, over every lane."""
        return sum(lane.running for lane in self.lanes.values())

    def observe_job(self, seconds: float) -> None:
        """Record the duration of one finished job."""
        self.job_seconds.observe(seconds)

    def observe_stages(self, timings: dict[str, float], operations: Collection[str] = ()) -> None:
        """Record the seconds one job spent decoding, in each operation and encoding.

        ``operations`` names the timings that are operations of the pipeline (the others
        are stages such as decode and encode); each also goes to the operation histogram.
        """
        for stage, seconds in timings.items():
            self.stage_seconds.labels(stage).observe(seconds)
            if stage in operations:
                self.operation_seconds.labels(stage).observe(seconds)

    def render(self) -> bytes:
        """Return every metric of the registry in the Prometheus text format."""
        return generate_latest(self.registry)


class _LaneCollector(Collector):
    """Reads the lanes' counts at scrape time, so the lanes keep plain integers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """The jobs in flight, and per lane the jobs waiting, running and finished."""
        lanes = sorted(self.metrics.lanes.items())
        yield GaugeMetricFamily(
            f"{PREFIX}_jobs_in_flight", "Image jobs running now.", self.metrics.jobs_in_flight
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_lane_jobs_waiting",
            "Image jobs waiting for a slot, by lane.",
            labels=["lane"],
        )
        running = GaugeMetricFamily(
            f"{PREFIX}_lane_jobs_in_flight", "Image jobs running now, by lane.", labels=["lane"]
        )
        finished = CounterMetricFamily(
            f"{PREFIX}_lane_jobs", "Image jobs finished, by lane.", labels=["lane"]
        )
        for name, stats in lanes:
            waiting.add_metric([name], stats.waiting)
            running.add_metric([name], stats.running)
            finished.add_metric([name], stats.finished)
        yield from (waiting, running, finished)
