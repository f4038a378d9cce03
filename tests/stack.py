"""Start Darkroom's services as real uvicorn processes on free loopback ports."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
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


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on loopback ``port`` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:  # closed while we looked
            continue
    return False


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
                health = httpx.get(f"{self.url}/healthz", timeout=1.0)
            except httpx.HTTPError:
                pass
            else:
                # Another process may have taken the port since it was picked: the answer
                # counts only when our own process is the one listening on it.
                if health.status_code == 200 and listens_on(self.process.pid, self.port):
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout_s} s:\n{self.log.read_text()}")

    def rss_mib(self) -> float:
        """Resident memory of the running process, in MiB (0 when it is not running)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        return kib / 1024

    @contextmanager
    def hung(self) -> Iterator[None]:
        """Freeze the process (SIGSTOP) for the block, its sockets open, as a deadlocked server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

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
def running_stack(
    workdir: Path, extra_env: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[Stack]:
    """Run catalog, processor and gateway on free ports with a catalog holding samples/.

    ``extra_env`` adds settings per service name, e.g. ``{"gateway": {...}}``.
    """
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
    for name, settings in (extra_env or {}).items():
        envs[name] = {**envs[name], **settings}
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
