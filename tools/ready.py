"""Wait until the three services answer their health checks, print the URL, then wait.

`make run` starts this beside the services (Procfile). honcho stops every process when one
exits, so this one stays up once all is well, and a service that never comes up ends the
whole run with a message saying which.
"""

import os
import signal
import sys
import time

import httpx

STARTUP_TIMEOUT_S = 60.0


def services() -> dict[str, str]:
    """Health-check URL of each service, from the same variables the Procfile uses."""
    host = os.environ.get("HOST", "127.0.0.1")
    ports = {
        "catalog": os.environ.get("CATALOG_PORT", "8001"),
        "processor": os.environ.get("PROCESSOR_PORT", "8002"),
        "gateway": os.environ.get("GATEWAY_PORT", "8000"),
    }
    return {name: f"http://{host}:{port}/healthz" for name, port in ports.items()}


def healthy(client: httpx.Client, url: str) -> bool:
    """Whether a health check answers 200."""
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    """Wait for every service, print the gateway URL, then wait for honcho to stop us."""
    urls = services()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        waiting = set(urls)
        while waiting:
            waiting = {name for name in waiting if not healthy(client, urls[name])}
            if waiting and time.monotonic() > deadline:
                names = ", ".join(sorted(waiting))
                print(f"not answering after {STARTUP_TIMEOUT_S:.0f} s: {names}")
                return 1
            time.sleep(0.2 if waiting else 0)
        gateway = urls["gateway"].removesuffix("/healthz")
        print(f"Darkroom is running: open {gateway}/  (Ctrl-C stops all three services)")
        sys.stdout.flush()
    signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
