"""One run: inputs through a bounded queue to N concurrent jobs, results written atomically."""

import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from darkroom_batch.catalog import Catalog
from darkroom_batch.processors import JobFailed, Processors
from darkroom_batch.sources import CatalogInput, FileInput, Input


@dataclass
class Summary:
    """What a run did so far: counts, each failure with its reason, and the time it took."""

    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds from the start to the end (or to now, while running)."""
        return (self.finished or time.monotonic()) - self.started

    def render(self) -> str:
        """The summary as printed at the end of a run."""
        elapsed = self.elapsed_s
        rate = self.done / elapsed if elapsed > 0 else 0.0
        lines = [
            f"done {self.done}, skipped {self.skipped}, failed {len(self.failures)} "
            f"in {elapsed:.1f} s ({rate:.1f} images/s)"
        ]
        if self.failures:
            lines.append("failed:")
            lines.extend(f"  {label}: {reason}" for label, reason in self.failures)
        return "\n".join(lines)


def write_atomically(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` through a hidden temporary file renamed over it.

    A run killed mid-write leaves at most a ``.<name>.<random>.part`` file, never a
    partial ``target``; a rerun therefore redoes exactly the unfinished outputs.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with temporary.open("xb") as file:
            file.write(content)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass
class Run:
    """The settings of one run and the services it talks to."""

    processors: Processors
    params: Mapping[str, str]
    out: Path
    jobs: int
    force: bool = False
    catalog: Catalog | None = None

    async def execute(
        self, inputs: AsyncIterator[Input], total: int | None, summary: Summary
    ) -> None:
        """Process every input, counting into ``summary``; returns when all are handled."""
        queue: asyncio.Queue[Input | None] = asyncio.Queue(maxsize=self.jobs * 2)
        with tqdm(
            total=total, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1
        ) as progress:

            async def produce() -> None:
                try:
                    async for item in inputs:
                        await queue.put(item)
                except JobFailed as error:
                    summary.failures.append(("catalog query", error.reason))
                    tqdm.write(f"failed to page the catalog query: {error.reason}", sys.stderr)
                # Not in a finally: once cancelled, no worker is left to take them.
                for _ in range(self.jobs):
                    await queue.put(None)

            async def work() -> None:
                while (item := await queue.get()) is not None:
                    await self._handle(item, summary)
                    progress.update(1)
                    if summary.failures:
                        progress.set_postfix(failed=len(summary.failures), refresh=False)

            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(self.jobs):
                    group.create_task(work())
        summary.finished = time.monotonic()

    async def _handle(self, item: Input, summary: Summary) -> None:
        """Process one input unless its output exists; a failure is counted, not raised."""
        target = self.out / item.output
        if not self.force and target.exists():
            summary.skipped += 1
            return
        try:
            data = await self._read(item)
            result = await self.processors.process(data, self.params)
            await asyncio.to_thread(write_atomically, target, result.content)
        except JobFailed as error:
            self._fail(item, error.reason, summary)
        except OSError as error:
            self._fail(item, error.strerror or str(error), summary)
        else:
            summary.done += 1

    async def _read(self, item: Input) -> bytes:
        """The input's bytes, from disk or from the catalog."""
        if isinstance(item, FileInput):
            return await asyncio.to_thread(item.path.read_bytes)
        assert isinstance(item, CatalogInput) and self.catalog is not None
        return await self.catalog.content(item.image_id)

    @staticmethod
    def _fail(item: Input, reason: str, summary: Summary) -> None:
        summary.failures.append((item.label, reason))
        tqdm.write(f"failed {item.label}: {reason}", sys.stderr)
