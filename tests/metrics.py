"""Reading Prometheus text the way a scraper does, for tests of every service's /metrics."""

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` in a Prometheus text, or None."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def processed(metrics: str) -> int:
    """How many /v1/process requests a processor's /metrics text counts as answered 200."""
    return int(
        sum(
            found.value
            for family in text_string_to_metric_families(metrics)
            for found in family.samples
            if found.name == "darkroom_processor_requests_total"
            and found.labels.get("route") == "/v1/process"
            and found.labels.get("status") == "200"
        )
    )


def processed_by(url: str) -> int:
    """``processed`` for the processor at ``url``, read from its /metrics."""
    return processed(httpx.get(f"{url}/metrics", timeout=5).text)
