"""One gateway, two processor processes: renders spread over both and survive losing one.

The gateway's ``GATEWAY_PROCESSOR_URL`` lists two real processor processes. Distinct
renders are counted on each processor's own ``/metrics``; then one processor is killed
with SIGKILL and every render still answers, from the other; restarted, it gets work
again once its time set aside is over.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.metrics import processed_by
from tests.stack import Service, Stack, free_port, running_stack

pytestmark = pytest.mark.e2e

RENDERS = 12


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Stack, list[Service]]]:
    processors = [
        Service("processor", free_port(), {}, tmp_path / f"replica-{n}.log") for n in range(2)
    ]
    urls = ",".join(processor.url for processor in processors)
    gateway_env = {"GATEWAY_PROCESSOR_URL": urls}
    try:
        for processor in processors:
            processor.start()
        with running_stack(tmp_path, {"gateway": gateway_env}) as stack:
            yield stack, processors
    finally:
        for processor in processors:
            processor.stop()


def render(client: httpx.Client, image_id: str, number: int) -> httpx.Response:
    """A render nothing has cached yet: each number is another brightness."""
    return client.get(
        f"/images/{image_id}/render", params={"ops": f"brightness:offset={number % 200 - 100}"}
    )


def test_renders_spread_over_the_replicas_and_survive_losing_one(
    replicas: tuple[Stack, list[Service]],
) -> None:
    stack, (first, second) = replicas
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as client:
        page = httpx.get(f"{stack.catalog.url}/v1/images", params={"limit": 1}).json()
        image_id = page["items"][0]["id"]
        for number in range(RENDERS):
            assert render(client, image_id, number).status_code == 200
        assert (processed_by(first.url), processed_by(second.url)) == (RENDERS // 2, RENDERS // 2)
        assert processed_by(stack.processor.url) == 0  # the stack's own processor is not listed

        assert first.process is not None
        first.process.kill()
        first.process.wait(timeout=10)
        before = processed_by(second.url)
        for number in range(RENDERS, 2 * RENDERS):
            assert render(client, image_id, number).status_code == 200
        assert processed_by(second.url) == before + RENDERS

        first.start()
        time.sleep(2.5)  # the gateway passes over a refusing replica for 2 s
        for number in range(2 * RENDERS, 3 * RENDERS):
            assert render(client, image_id, number).status_code == 200
        assert processed_by(first.url) >= RENDERS // 3
