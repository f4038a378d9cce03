"""The darkroom-batch command: parse the line, check the pipeline once, run, summarise.

Exit status: 0 when every input was done (or already was), 1 when any failed, 2 for a
usage error (bad arguments, an invalid pipeline, no processor answering, a catalog query
that cannot be read), 130 when interrupted.
"""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from darkroom_batch.catalog import Catalog, parse_query
from darkroom_batch.processors import (
    ProcessorPool,
    Processors,
    RetryPolicy,
    describe,
    error_message,
)
from darkroom_batch.runner import Run, Summary
from darkroom_batch.sources import (
    OUTPUT_SUFFIXES,
    Input,
    UsageError,
    catalog_input,
    check_distinct,
    file_inputs,
)

DEFAULT_PROCESSOR = "http://127.0.0.1:8002"
DEFAULT_CATALOG = "http://127.0.0.1:8001"
CONNECT_TIMEOUT_S = 5.0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 1 to 100, not {value}")
    return value


def _urls(values: Iterable[str]) -> list[str]:
    """URLs given one by one or comma-separated, without trailing slashes or repeats."""
    urls = [url.strip().rstrip("/") for value in values for url in value.split(",")]
    return list(dict.fromkeys(url for url in urls if url))


def parser() -> argparse.ArgumentParser:
    """The command line, with defaults from DARKROOM_* environment variables."""
    env = os.environ
    command = argparse.ArgumentParser(
        prog="darkroom-batch",
        description=(
            "Apply a processor pipeline to image files, folders (recursively) or a catalog "
            "query, writing results under --out. Existing outputs are skipped, so an "
            "interrupted run resumes where it stopped."
        ),
    )
    command.add_argument("pipeline", metavar="PIPELINE", help="e.g. 'grayscale|resize:width=640'")
    command.add_argument(
        "inputs", nargs="*", type=Path, metavar="INPUT", help="image file or folder"
    )
    command.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    command.add_argument(
        "--query",
        metavar="Q",
        help="catalog filters, e.g. 'min_width=1920&orientation=landscape'",
    )
    command.add_argument(
        "--catalog",
        default=env.get("DARKROOM_CATALOG_URL", DEFAULT_CATALOG),
        metavar="URL",
        help=f"catalog URL (DARKROOM_CATALOG_URL; default {DEFAULT_CATALOG})",
    )
    command.add_argument(
        "--processor",
        action="append",
        metavar="URL",
        help=(
            "processor URL; repeat (or separate by commas) to spread jobs over several "
            f"(DARKROOM_PROCESSOR_URL; default {DEFAULT_PROCESSOR})"
        ),
    )
    command.add_argument(
        "--jobs", type=_positive, default=4, metavar="N", help="concurrent jobs (default 4)"
    )
    command.add_argument("--format", choices=sorted(OUTPUT_SUFFIXES), help="output format")
    command.add_argument("--quality", type=_quality, metavar="1-100", help="JPEG/WebP quality")
    command.add_argument("--force", action="store_true", help="redo outputs that exist")
    command.add_argument(
        "--retries",
        type=_count,
        default=5,
        metavar="N",
        help="retries per image on overload, timeouts and lost connections (default 5)",
    )
    command.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="seconds one request may take (default 60)",
    )
    command.add_argument(
        "--catalog-key",
        default=env.get("DARKROOM_CATALOG_KEY", ""),
        metavar="KEY",
        help="catalog bearer key (DARKROOM_CATALOG_KEY)",
    )
    command.add_argument(
        "--processor-key",
        default=env.get("DARKROOM_PROCESSOR_KEY", ""),
        metavar="KEY",
        help="processor bearer key (DARKROOM_PROCESSOR_KEY)",
    )
    return command


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for a key; none for an empty key."""
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True, slots=True)
class CheckedPipeline:
    """A pipeline as the processor canonicalised it, and whether it makes photos or graphics."""

    canonical: str
    output: str


async def check_pipeline(
    client: httpx.AsyncClient, urls: Sequence[str], ops: str, headers: dict[str, str]
) -> CheckedPipeline:
    """Ask the first processor that answers to validate the pipeline; UsageError if invalid."""
    unreachable = []
    for url in urls:
        try:
            response = await client.get(f"{url}/v1/pipeline", params={"ops": ops}, headers=headers)
        except httpx.TransportError as error:
            unreachable.append(f"{url}: {describe(error)}")
            continue
        if response.status_code in (401, 403):
            raise UsageError(f"processor {url} refused the key: {error_message(response)}")
        if not response.is_success:
            raise UsageError(f"invalid pipeline: {error_message(response)}")
        answer = response.json()
        return CheckedPipeline(answer["pipeline"], answer.get("output", "photo"))
    raise UsageError(f"no processor answered: {'; '.join(unreachable)}")


async def _listed(items: Sequence[Input]) -> AsyncIterator[Input]:
    for item in items:
        yield item


async def _chained(*sources: AsyncIterator[Input]) -> AsyncIterator[Input]:
    for source in sources:
        async for item in source:
            yield item


async def batch(args: argparse.Namespace, summary: Summary) -> None:
    """Check everything a run needs, then run it, counting into ``summary``."""
    urls = _urls(args.processor or [os.environ.get("DARKROOM_PROCESSOR_URL", DEFAULT_PROCESSOR)])
    policy = RetryPolicy(retries=args.retries)
    timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, CONNECT_TIMEOUT_S))
    limits = httpx.Limits(max_connections=args.jobs + 4, max_keepalive_connections=args.jobs + 4)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        checked = await check_pipeline(client, urls, args.pipeline, bearer(args.processor_key))
        files = file_inputs(args.inputs, args.out, args.format, checked.output)
        check_distinct(files)
        sources: list[AsyncIterator[Input]] = [_listed(files)]
        total: int | None = len(files)
        catalog = None
        if args.query is not None:
            query = parse_query(args.query)
            catalog = Catalog(client, args.catalog.rstrip("/"), bearer(args.catalog_key), policy)
            first = await catalog.first_page(query)
            count = await catalog.count(query)
            total = None if count is None else len(files) + count
            records = catalog.images(query, first)
            sources.append(
                catalog_input(record, args.format, checked.output) async for record in records
            )
        print(
            f"{checked.canonical} over {len(urls)} processor(s), {args.jobs} jobs, into {args.out}",
            file=sys.stderr,
        )
        processors = Processors(client, ProcessorPool(urls), policy, bearer(args.processor_key))
        params = {"ops": checked.canonical}
        if args.format:
            params["format"] = args.format
        if args.quality:
            params["quality"] = str(args.quality)
        run = Run(processors, params, args.out, args.jobs, args.force, catalog)
        summary.started = time.monotonic()
        await run.execute(_chained(*sources), total, summary)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status (0 all done, 1 some failed, 2 usage, 130 interrupted)."""
    command = parser()
    args = command.parse_args(argv)
    if not args.inputs and args.query is None:
        command.error("give INPUT files or folders, or --query")
    if args.out.exists() and not args.out.is_dir():
        command.error(f"--out {args.out} is not a folder")
    summary = Summary()
    try:
        asyncio.run(batch(args, summary))
    except UsageError as error:
        print(f"darkroom-batch: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; a rerun resumes where this one stopped", file=sys.stderr)
        print(summary.render())
        return 130
    print(summary.render())
    return 1 if summary.failures else 0
