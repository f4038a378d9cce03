"""Start Darkroom's services as real uvicorn processes on free loopback ports."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
HOST = "127.0.0.1"
APPS = {
    "catalog": "catalog.main:create_app",
    "processor": "processor.main:create_app",
    "gateway": "gateway.main:create_app",
}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """One running (or stopped) uvicorn process."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and wait until its health check answers."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    APPS[self.name],
                    "--factory",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout_s} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Stack:
    """The three services, wired to each other."""

    catalog: Service
    processor: Service
    gateway: Service

    def services(self) -> list[Service]:
        """All three, in start order."""
        return [self.catalog, self.processor, self.gateway]


def import_samples(env: dict[str, str]) -> None:
    """Import samples/ into the catalog store named by env, as `make run` does."""
    subprocess.run(
        [sys.executable, "-m", "catalog.importer", str(SAMPLES)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    """Run catalog, processor and gateway on free ports with a catalog holding samples/."""
    ports = {name: free_port() for name in APPS}
    catalog_env = {
        "CATALOG_STORE": f"sqlite:///{workdir / 'catalog.db'}",
        "CATALOG_BLOBS": str(workdir / "blobs"),
    }
    import_samples(catalog_env)
    envs = {
        "catalog": catalog_env,
        "processor": {},
        "gateway": {
            "GATEWAY_CATALOG_URL": f"http://{HOST}:{ports['catalog']}",
            "GATEWAY_PROCESSOR_URL": f"http://{HOST}:{ports['processor']}",
            "GATEWAY_RETRY_AFTER_S": "1",
        },
    }
    stack = Stack(
        *(Service(name, ports[name], envs[name], workdir / f"{name}.log") for name in APPS)
    )
    try:
        for service in stack.services():
            service.start()
        yield stack
    finally:
        for service in reversed(stack.services()):
            service.stop()
