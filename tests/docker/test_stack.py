"""The images built and the stack run in a real Docker engine, reached only on loopback ports.

The stack is docker-compose.yml + deploy/compose.sqlite.yml + deploy/compose.smoke.yml under
a fresh project name, the processor scaled to three replicas: images built FROM a local
Debian base image (debootstrap, kept once built) with pip installing from a wheelhouse,
since nothing can be pulled. The flow goes through the gateway's published port, and each
processor replica's own /metrics says how many renders it served. Without an engine that
can start (not root, no docker.io), every test here is skipped, saying why.
"""

import io
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from PIL import Image

from tests.metrics import processed
from tests.stack import ROOT, SAMPLES

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]

COMPOSE_FILES = ["docker-compose.yml", "deploy/compose.sqlite.yml", "deploy/compose.smoke.yml"]
OVERRIDES = ["deploy/compose.sqlite.yml", "deploy/compose.smoke.yml"]
BASE_IMAGE = os.environ.get("DARKROOM_BASE", "darkroom-base:bookworm")
REPLICAS = 3
RENDERS = 30
HEALTHY_TIMEOUT_S = 240.0
SAMPLE_NAMES = sorted(
    path.name for path in SAMPLES.iterdir() if path.suffix.lower() in {".jpg", ".png"}
)


def compose_command() -> list[str] | None:
    """The compose client: the docker CLI plugin when it works, else docker-compose."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def run(args: list[str], timeout_s: float, env: dict[str, str] | None = None) -> str:
    """Run a command from the repository root; its stdout, or a failure showing its output."""
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@pytest.mark.parametrize(
    "overrides", [[], OVERRIDES[:1], OVERRIDES], ids=["mongo", "sqlite", "smoke"]
)
def test_compose_files_are_valid(overrides: list[str]) -> None:
    """docker-compose.yml alone and with each override is a valid compose project."""
    compose = compose_command()
    if compose is None:
        pytest.skip("no compose client (docker compose or docker-compose) is installed")
    files = [arg for name in ["docker-compose.yml", *overrides] for arg in ("-f", name)]
    env = {**os.environ, "DARKROOM_ENV_FILE": "deploy/darkroom.env.example"}
    run([*compose, *files, "config", "-q"], timeout_s=60, env=env)


def test_sqlite_override_leaves_mongo_out() -> None:
    """With the SQLite override the catalog stores under /data and nothing starts mongo."""
    compose = compose_command()
    if compose is None:
        pytest.skip("no compose client (docker compose or docker-compose) is installed")
    files = ["-f", "docker-compose.yml", "-f", "deploy/compose.sqlite.yml"]
    env = {**os.environ, "DARKROOM_ENV_FILE": "deploy/darkroom.env.example"}
    services = yaml.safe_load(run([*compose, *files, "config"], timeout_s=60, env=env))["services"]
    assert services["catalog"]["environment"]["CATALOG_STORE"] == "sqlite:////data/catalog.db"
    # Behind a profile nobody enables, and no service depends on it: `up` leaves it out.
    assert services["mongo"]["profiles"] == ["mongo"]
    assert not [
        name for name, service in services.items() if "mongo" in service.get("depends_on", {})
    ]


@dataclass
class Stack:
    """A running compose project: its command line and the loopback URLs it published."""

    compose: list[str]
    env: dict[str, str]
    gateway: str
    catalog: str
    processors: list[str]

    def logs(self) -> str:
        """The last lines of every container's log, to explain a failure."""
        result = subprocess.run(
            [*self.compose, "logs", "--no-color", "--tail=40"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout[-8000:]


def engine_or_skip() -> list[str]:
    """Start dockerd when it is installed but not running; skip, with the reason, when it cannot."""
    result = subprocess.run(
        [str(ROOT / "tools/ensure-docker.sh"), "--start-only"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["tools/ensure-docker.sh failed"]
        pytest.skip(lines[-1])
    compose = compose_command()
    if compose is None:
        pytest.skip("no compose client (docker compose or docker-compose) is installed")
    return compose


def published(compose: list[str], env: dict[str, str], service: str, port: int, index: int) -> str:
    """The loopback URL a service's container publishes its port on."""
    out = run([*compose, "port", f"--index={index}", service, str(port)], timeout_s=60, env=env)
    address = out.strip().splitlines()[-1]
    host, _, host_port = address.rpartition(":")
    assert host == "127.0.0.1", f"{service} is published on {address}, not on loopback"
    return f"http://127.0.0.1:{host_port}"


def wait_healthy(compose: list[str], env: dict[str, str]) -> None:
    """Wait, bounded, until every container of the project says it is healthy."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        ids = run([*compose, "ps", "-q"], timeout_s=60, env=env).split()
        if ids:
            out = run(
                ["docker", "inspect", "--format", "{{.Name}} {{.State.Health.Status}}", *ids],
                timeout_s=60,
            )
            states = dict(line.split(" ", 1) for line in out.strip().splitlines())
            if len(ids) == REPLICAS + 2 and all(s == "healthy" for s in states.values()):
                return
        time.sleep(2)
    pytest.fail(f"not healthy after {HEALTHY_TIMEOUT_S:.0f} s: {states}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Build the base image (once), the wheelhouse and the images; run the stack; tear it down."""
    compose = engine_or_skip()
    timings: dict[str, float] = {}

    def step(name: str, args: list[str], timeout_s: float, env: dict[str, str]) -> None:
        started = time.monotonic()
        run(args, timeout_s=timeout_s, env=env)
        timings[name] = time.monotonic() - started

    env_file = tmp_path_factory.mktemp("docker") / "darkroom.env"
    template = (ROOT / "deploy/darkroom.env.example").read_text()
    key = secrets.token_urlsafe(32)
    env_file.write_text(
        template.replace("CATALOG_API_KEYS=\n", f"CATALOG_API_KEYS={key}\n").replace(
            "GATEWAY_CATALOG_KEY=\n", f"GATEWAY_CATALOG_KEY={key}\n"
        )
    )
    project = f"darkroomsmoke{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "DARKROOM_BASE": BASE_IMAGE,
        "DARKROOM_ENV_FILE": str(env_file),
        # Empty: any free loopback port, so the test never collides with a running stack.
        "DARKROOM_GATEWAY_PORT": "",
        "DARKROOM_CATALOG_PORT": "",
    }
    files = [arg for name in COMPOSE_FILES for arg in ("-f", name)]
    project_compose = [*compose, "-p", project, *files]
    step("base image", [str(ROOT / "tools/docker-base.sh")], 900, env)
    step("wheelhouse", [str(ROOT / "tools/docker-wheels.sh")], 900, env)
    step("images", [*project_compose, "build"], 1200, env)
    try:
        step("up", [*project_compose, "up", "-d", "--scale", f"processor={REPLICAS}"], 300, env)
        started = time.monotonic()
        wait_healthy(project_compose, env)
        timings["healthy"] = time.monotonic() - started
        running = Stack(
            compose=project_compose,
            env=env,
            gateway=published(project_compose, env, "gateway", 8000, 1),
            catalog=published(project_compose, env, "catalog", 8001, 1),
            processors=[
                published(project_compose, env, "processor", 8002, index)
                for index in range(1, REPLICAS + 1)
            ],
        )
        print("docker smoke timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
        yield running
    finally:
        subprocess.run(
            [*project_compose, "down", "-v", "--remove-orphans", "--timeout", "5"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=180,
            check=False,
        )


@pytest.fixture(scope="module")
def catalog_key(stack: Stack) -> str:
    """The write key the stack's catalog accepts (the one its gateway sends)."""
    text = Path(stack.env["DARKROOM_ENV_FILE"]).read_text()
    match = re.search(r"^CATALOG_API_KEYS=(\S+)$", text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def gallery_ids(html: str) -> list[str]:
    """The image ids the gallery page links to, in page order."""
    return list(dict.fromkeys(re.findall(r'href="/images/([0-9A-Za-z_-]+)"', html)))


def test_gallery_lists_the_imported_samples(stack: Stack) -> None:
    """The catalog container imported /samples on start, and the gallery shows every one."""
    with httpx.Client(base_url=stack.gateway, timeout=10.0) as client:
        page = client.get("/")
    assert page.status_code == 200, stack.logs()
    missing = [name for name in SAMPLE_NAMES if name not in page.text]
    assert not missing, f"not in the gallery: {missing}"
    assert len(gallery_ids(page.text)) >= len(SAMPLE_NAMES)


def test_ready_and_not_root(stack: Stack) -> None:
    """Every service says it is ready, and runs as the image's own unprivileged user."""
    urls = [stack.gateway, stack.catalog, *stack.processors]
    with httpx.Client(timeout=10.0) as client:
        statuses = [client.get(f"{url}/readyz").status_code for url in urls]
    assert statuses == [200] * len(urls)
    for service in ("catalog", "processor", "gateway"):
        uid = run([*stack.compose, "exec", "-T", service, "id", "-u"], timeout_s=60, env=stack.env)
        assert uid.strip() not in ("", "0"), f"{service} runs as uid {uid.strip()!r}"


def test_render_through_the_gateway(stack: Stack) -> None:
    """A grayscale render is an image whose three channels are equal everywhere."""
    with httpx.Client(base_url=stack.gateway, timeout=30.0) as client:
        image_id = gallery_ids(client.get("/").text)[0]
        response = client.get(f"/images/{image_id}/render", params={"ops": "grayscale"})
    assert response.status_code == 200, stack.logs()
    assert response.headers["content-type"].startswith("image/")
    image = Image.open(io.BytesIO(response.content))
    if image.mode != "L":
        red, green, blue = image.convert("RGB").split()
        assert red.tobytes() == green.tobytes() == blue.tobytes()


def test_upload_through_the_gateway(stack: Stack, catalog_key: str) -> None:
    """A form post from the gateway's own origin stores a new image the catalog then lists."""
    name = f"smoke-{uuid.uuid4().hex[:8]}.png"
    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 48), secrets.token_bytes(64 * 48 * 3)).save(buffer, "PNG")
    with httpx.Client(timeout=30.0) as client:
        refused = client.post(
            f"{stack.catalog}/v1/images",
            params={"name": name},
            content=buffer.getvalue(),
            headers={"Content-Type": "image/png"},
        )
        assert refused.status_code == 401, refused.text
        response = client.post(
            f"{stack.gateway}/upload",
            files={"file": (name, buffer.getvalue(), "image/png")},
            headers={"Origin": stack.gateway, "Accept": "application/json"},
        )
        assert response.status_code == 201, f"{response.text}\n{stack.logs()}"
        listed = client.get(
            f"{stack.catalog}/v1/images",
            params={"name": name},
            headers={"Authorization": f"Bearer {catalog_key}"},
        )
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(item["name"], item["width"], item["height"]) for item in items] == [(name, 64, 48)]


def test_renders_served_reads_the_request_counter() -> None:
    """Only /v1/process samples answered 200 count, whatever the order of their labels."""
    metrics = "\n".join(
        [
            "# TYPE darkroom_processor_requests_total counter",
            'darkroom_processor_requests_total{route="/v1/process",status="200",method="POST"} 7.0',
            'darkroom_processor_requests_total{method="POST",route="/v1/process",status="200"} 2',
            'darkroom_processor_requests_total{route="/v1/process",status="422",method="POST"} 5.0',
            'darkroom_processor_requests_total{route="/metrics",status="200",method="GET"} 9.0',
        ]
    )
    assert processed(metrics) == 9


def test_renders_spread_over_processor_replicas(stack: Stack) -> None:
    """Distinct renders through the gateway reach at least two of the three replicas."""
    with httpx.Client(timeout=30.0) as client:
        before = [processed(client.get(f"{url}/metrics").text) for url in stack.processors]
        image_id = gallery_ids(client.get(f"{stack.gateway}/").text)[0]
        for width in range(64, 64 + RENDERS):
            response = client.get(
                f"{stack.gateway}/images/{image_id}/render", params={"ops": f"resize:width={width}"}
            )
            assert response.status_code == 200, response.text
            assert Image.open(io.BytesIO(response.content)).width == width
        after = [processed(client.get(f"{url}/metrics").text) for url in stack.processors]
    served = [b - a for a, b in zip(before, after, strict=True)]
    assert sum(served) >= RENDERS, served
    assert sum(1 for count in served if count > 0) >= 2, f"renders per replica: {served}"
