"""Sweep originals no record references, at start and then periodically, on a thread of its own.

A crash (or a failed upload's failed clean-up) between writing an original and writing its
record leaves a file nothing points to. The sweeper deletes such files once they are older
than the grace period, which keeps the original of an upload still in flight.
"""

import logging
import threading
import time
from datetime import timedelta

from catalog.store import ImageStore

logger = logging.getLogger(__name__)

# How long stop() waits for a sweep to finish the batch in hand.
STOP_TIMEOUT_S = 30.0


class OrphanSweeper:
    """Runs ``store.sweep_orphans`` now and every ``interval_s`` seconds until stopped."""

    def __init__(self, store: ImageStore, *, grace_s: float, interval_s: float) -> None:
        self._store = store
        self._grace = timedelta(seconds=grace_s)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sweeping on a daemon thread, the first sweep at once."""
        self._thread = threading.Thread(target=self._run, name="orphan-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the thread to stop after the batch in hand, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("orphan sweep still running after %.0f s; not waiting", timeout_s)

    def sweep(self) -> int:
        """One sweep, logged with its count; a failure is logged and counts as none swept."""
        started = time.monotonic()
        try:
            removed = self._store.sweep_orphans(self._grace, stop=self._stop)
        except Exception:
            # The next sweep tries again (a MongoDB server may be back by then).
            logger.exception("orphan sweep failed")
            return 0
        # A deleted orphan means something was left half-written: worth a warning.
        level = logging.WARNING if removed else logging.INFO
        logger.log(
            level,
            "orphan sweep: deleted %d unreferenced original(s) older than %.0f s in %.2f s",
            removed,
            self._grace.total_seconds(),
            time.monotonic() - started,
        )
        return removed

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            if self._stop.wait(self._interval_s):
                return
