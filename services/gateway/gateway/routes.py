"""Gateway pages and image routes."""

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, BeforeValidator, Field

from gateway.clients import (
    CameraCount,
    DuplicateGroup,
    DuplicatePage,
    ImagePage,
    ImageRecord,
    Rendered,
    ServiceClient,
    SimilarImage,
)
from gateway.config import Settings
from gateway.errors import BackendRejected, DarkroomError, InvalidInput, ProcessingUnavailable
from gateway.forms import (
    build_step,
    form_fields,
    prefilled,
    split_pipeline,
    step_values,
    submitted_values,
)
from gateway.rendering import ORIGINAL_CACHE, ImageCount, Renderer, placeholder

STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter()

OUTPUT_FORMATS = ("jpeg", "png", "webp", "avif")
# The live preview's widest result: a quick render that fills the result pane.
PREVIEW_WIDTH = 640
# Images are shown in panes about 650 px wide: renditions for 1x and 2x screens.
DISPLAY_WIDTHS = (650, 1300)
GALLERY_COOKIE = "gallery"
# Formats an <img> shows in every current browser; others are shown through a rendition.
BROWSER_FORMATS = frozenset({"jpeg", "png", "webp", "gif", "avif", "bmp"})
SORTS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-width": "Widest first",
    "width": "Narrowest first",
    "-height": "Tallest first",
    "height": "Shortest first",
    "-pixels": "Most pixels first",
    "pixels": "Fewest pixels first",
    "name": "Name A to Z",
    "-name": "Name Z to A",
    "-taken": "Taken latest first",
    "taken": "Taken earliest first",
}


def get_renderer(request: Request) -> Renderer:
    """The renderer built at start-up: the pages' one way to the backends."""
    renderer: Renderer = request.app.state.renderer
    return renderer


RendererDep = Annotated[Renderer, Depends(get_renderer)]
IfNoneMatch = Annotated[str | None, Header()]


def _blank_to_none(value: object) -> object:
    """HTML forms send empty inputs as empty strings; they mean 'no filter'."""
    return None if value == "" else value


Dimension = Annotated[
    Annotated[int, Field(ge=1, le=1_000_000)] | None, BeforeValidator(_blank_to_none)
]
# The catalog's `format` and `orientation` values (test_gallery.py checks them against it).
CatalogFormat = Literal["jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic"]
Orientation = Literal["landscape", "portrait", "square"]
# The catalog's colour classes: twelve hues 30° apart from red, then the colours without hue.
Colour = Literal[
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "spring",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "rose",
    "grey",
    "black",
    "white",
]
# The catalog's longest name filter, and a bound on a camera's name well above any real one.
MAX_NAME_FILTER = 1000
MAX_CAMERA_FILTER = 200
# How an empty gallery names each active filter.
FILTER_LABELS = {
    "min_width": "width at least {} px",
    "max_width": "width at most {} px",
    "min_height": "height at least {} px",
    "max_height": "height at most {} px",
    "format": "format {}",
    "orientation": "orientation {}",
    "name": "name containing “{}”",
    "taken_after": "taken on or after {}",
    "taken_before": "taken on or before {}",
    "camera": "camera {}",
    "colour": "colour {}",
    "has_location": "{}",
}
# How many look-alikes the image page shows.
SIMILAR_LIMIT = 12
# Groups of near-duplicates per page of /duplicates.
DUPLICATE_GROUPS = 20


class GalleryQuery(BaseModel):
    """The gallery's query form."""

    min_width: Dimension = None
    max_width: Dimension = None
    min_height: Dimension = None
    max_height: Dimension = None
    format: Annotated[CatalogFormat | None, BeforeValidator(_blank_to_none)] = None
    orientation: Annotated[Orientation | None, BeforeValidator(_blank_to_none)] = None
    name: Annotated[
        Annotated[str, Field(max_length=MAX_NAME_FILTER)] | None, BeforeValidator(_blank_to_none)
    ] = None
    taken_after: Annotated[date | None, BeforeValidator(_blank_to_none)] = None
    taken_before: Annotated[date | None, BeforeValidator(_blank_to_none)] = None
    camera: Annotated[
        Annotated[str, Field(max_length=MAX_CAMERA_FILTER)] | None,
        BeforeValidator(_blank_to_none),
    ] = None
    colour: Annotated[Colour | None, BeforeValidator(_blank_to_none)] = None
    has_location: Annotated[bool | None, BeforeValidator(_blank_to_none)] = None
    sort: Literal[tuple(SORTS)] = "-created"  # type: ignore[valid-type]
    cursor: Annotated[str | None, BeforeValidator(_blank_to_none)] = None

    def filters(self, *, sort: bool = True) -> list[tuple[str, str]]:
        """The filters (and the sort, unless ``sort`` is false) as query parameters, no cursor."""
        fields = self.model_dump(exclude={"cursor", "sort"}, exclude_none=True)
        if sort:
            fields["sort"] = self.sort
        return [(key, query_text(value)) for key, value in fields.items()]


def query_text(value: object) -> str:
    """A filter's value as a URL carries it: dates in ISO 8601, flags as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def filter_label(key: str, value: str) -> str:
    """How the empty gallery names an active filter."""
    if key == "format":
        value = value.upper()
    elif key == "has_location":
        value = "with a location" if value == "true" else "without a location"
    return FILTER_LABELS[key].format(value)


@dataclass(frozen=True)
class Loosening:
    """An active filter of an empty gallery: what it says, the query without it, what that finds."""

    label: str
    url: str
    count: ImageCount | None

    @property
    def found(self) -> str | None:
        """What the query without this filter finds, as the gallery says it."""
        return None if self.count is None else count_text(self.count)


def count_text(count: ImageCount) -> str:
    """The count as the gallery says it: "1 image", "24 images", "more than 10,000 images"."""
    if not count.exact:
        return f"more than {count.count:,} images"
    return "1 image" if count.count == 1 else f"{count.count:,} images"


async def count_or_none(renderer: Renderer, filters: list[tuple[str, str]]) -> ImageCount | None:
    """How many images match, or None when the catalog cannot say: the page does without it."""
    try:
        return await renderer.count(filters)
    except (DarkroomError, ValueError):  # ValueError: an answer that is not a count
        return None


async def loosenings(renderer: Renderer, query: GalleryQuery) -> list[Loosening]:
    """Each active filter with the same query without it, those that find the most first."""
    filters = query.filters(sort=False)
    counts = await asyncio.gather(
        *(count_or_none(renderer, [f for f in filters if f[0] != key]) for key, _ in filters)
    )
    found = [
        Loosening(
            filter_label(key, value),
            "/?" + urlencode([f for f in query.filters() if f[0] != key]),
            count,
        )
        for (key, value), count in zip(filters, counts, strict=True)
    ]
    return sorted(found, key=lambda item: reach(item.count), reverse=True)


async def cameras_or_none(renderer: Renderer) -> list[CameraCount] | None:
    """The catalog's cameras, or None when it cannot say: the gallery goes without the select."""
    try:
        return await renderer.cameras()
    except (DarkroomError, ValueError, KeyError, TypeError):  # the latter: not a camera list
        return None


def camera_choices(cameras: list[CameraCount] | None, chosen: str | None) -> list[str] | None:
    """The camera select's names: the catalog's, plus the chosen one when it is not among them."""
    if cameras is None:
        return None
    names = [camera.camera for camera in cameras]
    return [chosen, *names] if chosen and chosen not in names else names


HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def swatch_uri(colour: str | None) -> str | None:
    """A data: URI of a small square of ``colour`` (``#rrggbb``), or None for anything else.

    An image rather than an inline style, which the page's Content-Security-Policy forbids.
    """
    if colour is None or not HEX_COLOUR.fullmatch(colour):
        return None
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='16' height='16'>"
        f"<rect width='16' height='16' fill='{colour.lower()}'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg)


def taken_text(taken_at: str) -> str:
    """A date taken as stored, easier to read: the date, the time, then the offset if any."""
    day, _, rest = taken_at.partition("T")
    match = re.fullmatch(r"(\d\d:\d\d:\d\d)(.*)", rest)
    if not match:
        return taken_at
    clock, offset = match.groups()
    if offset in ("Z", "+00:00"):
        offset = "UTC"
    elif offset:
        offset = f"UTC{offset}"
    return " ".join(part for part in (day, clock, offset) if part)


templates.env.globals["swatch_uri"] = swatch_uri
templates.env.filters["taken_text"] = taken_text


def reach(count: ImageCount | None) -> tuple[bool, int]:
    """A count as a sort key: "more than N" above every exact count, an unknown one last."""
    return (False, -1) if count is None else (not count.exact, count.count)


def narrowest(loosen: list[Loosening]) -> list[Loosening]:
    """The filters whose removal finds the most images (none when no removal finds any)."""
    best = max((reach(item.count) for item in loosen), default=(False, 0))
    return [item for item in loosen if best[1] > 0 and reach(item.count) == best]


OutputFormat = Annotated[
    Literal["", "jpeg", "png", "webp", "avif"],
    Query(description="Output format; empty for the processor's default."),
]


def render_url(record: ImageRecord, ops: str, fmt: str, **extra: str) -> str:
    """URL of the processed image."""
    query = {"ops": ops, **({"format": fmt} if fmt else {}), **extra}
    return f"/images/{record.id}/render?{urlencode(query)}"


@dataclass(frozen=True)
class Display:
    """How a page shows an image: a display-sized ``src``, a ``srcset``, the full one's URL."""

    src: str
    srcset: str | None
    full: str


def display(width: int, full_url: str, shrunk_url: Callable[[int], str]) -> Display:
    """Display-sized renditions of an image ``width`` px wide, at most twice the pane's width.

    An image that fits twice the pane is shown as it is; a larger one as renditions
    ``DISPLAY_WIDTHS`` wide (``shrunk_url(w)``), so a 50 MP photo or a 13 MB PNG result
    never travels to fill a 650 px pane. The full image stays one click away.
    """
    if width <= DISPLAY_WIDTHS[-1]:
        return Display(src=full_url, srcset=None, full=full_url)
    srcset = ", ".join(f"{shrunk_url(w)} {w}w" for w in DISPLAY_WIDTHS)
    return Display(src=shrunk_url(DISPLAY_WIDTHS[-1]), srcset=srcset, full=full_url)


def gallery_url(request: Request) -> str:
    """The gallery as the visitor last left it (filters, sort and page), from a cookie."""
    remembered = request.cookies.get(GALLERY_COOKIE, "")
    kept = [(k, v) for k, v in parse_qsl(remembered) if k in GalleryQuery.model_fields]
    return "/?" + urlencode(kept) if kept else "/"


templates.env.globals["gallery_url"] = gallery_url


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the gateway answers (backends are reported by the pages themselves)."""
    return {"status": "ok", "service": "gateway"}


# A readiness probe answers within its own timeout, whatever the backends do.
READY_TIMEOUT_S = 2.0


async def unready_dependencies(catalog: ServiceClient, processor: ServiceClient) -> dict[str, str]:
    """Why each backend is not ready (catalog /readyz, processor /healthz); {} when both are."""
    checks = {
        "catalog": catalog.request("GET", "/readyz", timeout=READY_TIMEOUT_S),
        "processor": processor.request("GET", "/healthz", timeout=READY_TIMEOUT_S),
    }
    answers = await asyncio.gather(*checks.values(), return_exceptions=True)
    problems = {}
    for name, answer in zip(checks, answers, strict=True):
        if isinstance(answer, DarkroomError):
            problems[name] = answer.message
        elif isinstance(answer, BaseException):
            problems[name] = f"the {name} check failed: {type(answer).__name__}"
    return problems


@router.get("/readyz", include_in_schema=False)
async def readyz(renderer: RendererDep) -> JSONResponse:
    """Readiness: 200 when the catalog is ready and the processor answers, else 503 naming which."""
    problems = await unready_dependencies(renderer.catalog, renderer.processor)
    if not problems:
        return JSONResponse({"status": "ready"})
    message = " ".join(f"{name}: {problem}" for name, problem in problems.items())
    return JSONResponse(
        {"error": {"code": "dependency_unavailable", "message": message}},
        status_code=503,
        headers={"Retry-After": str(renderer.catalog.retry_after)},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and their latency, cache hits and misses."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The site icon, for browsers that ask for it at the root."""
    return FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": ORIGINAL_CACHE})


@router.get("/", name="gallery")
async def gallery(
    request: Request,
    query: Annotated[GalleryQuery, Query()],
    renderer: RendererDep,
) -> Response:
    """The gallery: a query form, how many images match, a grid of thumbnails, page by page."""
    error: BackendRejected | None = None
    # The count is asked for alongside the page; a catalog that cannot count costs only it.
    counting = asyncio.ensure_future(count_or_none(renderer, query.filters(sort=False)))
    listing_cameras = asyncio.ensure_future(cameras_or_none(renderer))
    try:
        page = await renderer.page(query.filters(), query.cursor)
    except BackendRejected as exc:
        # A query the catalog refuses (min above max, say) is shown above the form that made it.
        page, error = ImagePage(items=[]), exc
    except BaseException:
        counting.cancel()
        listing_cameras.cancel()
        raise
    cameras = await listing_cameras
    count: ImageCount | None = None
    if error is None:
        count = await counting
    else:
        counting.cancel()
    loosen: list[Loosening] = []
    if not page.items and error is None and query.cursor is None:
        loosen = await loosenings(renderer, query)
    next_url = None
    if page.next_cursor:
        next_url = "/?" + urlencode([*query.filters(), ("cursor", page.next_cursor)])
    outage = await renderer.processing_outage() if page.items else None
    response = templates.TemplateResponse(
        request,
        "gallery.html",
        {
            "query": query,
            "sorts": SORTS,
            "formats": get_args(CatalogFormat),
            "orientations": get_args(Orientation),
            "colours": get_args(Colour),
            "cameras": camera_choices(cameras, query.camera),
            "max_name": MAX_NAME_FILTER,
            "count": count_text(count) if count else None,
            "loosen": loosen,
            "narrowest": narrowest(loosen),
            "images": page.items,
            "next_url": next_url,
            "first_url": "/?" + urlencode(query.filters()) if query.cursor else None,
            "error": error,
            "outage": outage,
        },
        status_code=error.status if error else 200,
        headers=error.headers() if error else None,
    )
    if error is None:
        position = [*query.filters(), *([("cursor", query.cursor)] if query.cursor else [])]
        response.set_cookie(GALLERY_COOKIE, urlencode(position), httponly=True, samesite="lax")
    return response


def edited_pipeline(ops: str, step: str, action: str) -> str:
    """The pipeline after the form's step: appended ("add"), or replacing the last step."""
    steps = split_pipeline(ops)
    kept = steps if action == "add" else steps[:-1]
    return "|".join([*kept, step])


def without_step(ops: str, index: int) -> str:
    """The pipeline with its step number ``index`` (from 0) removed."""
    steps = split_pipeline(ops)
    return "|".join(steps[:index] + steps[index + 1 :])


def moved_step(ops: str, index: int, offset: int) -> str | None:
    """The pipeline with step ``index`` swapped with its neighbour ``offset`` away, if any."""
    steps = split_pipeline(ops)
    other = index + offset
    if not (0 <= index < len(steps) and 0 <= other < len(steps)):
        return None
    steps[index], steps[other] = steps[other], steps[index]
    return "|".join(steps)


def preview_pipeline(ops: str, width: int) -> str:
    """The pipeline followed by a resize to the preview's width, for a result ``width`` px wide."""
    steps = split_pipeline(ops)
    if width > PREVIEW_WIDTH:
        steps.append(f"resize:width={PREVIEW_WIDTH}")
    return "|".join(steps)


def curl_command(settings: Settings, record: ImageRecord, pipeline: str, fmt: str, ext: str) -> str:
    """A shell command that makes the same result with the processor's API from the original."""
    query = urlencode({"ops": pipeline, **({"format": fmt} if fmt else {})})
    url = f"{settings.processor_url.rstrip('/')}/v1/process?{query}"
    words = ["curl", "-X", "POST", "--data-binary", shlex.quote(f"@{record.name}")]
    if settings.processor_key.strip():
        # The key itself never appears in a page: the command reads it from the environment.
        words += ["-H", '"Authorization: Bearer $PROCESSOR_KEY"']
    return " ".join([*words, "-o", shlex.quote(f"result.{ext}"), shlex.quote(url)])


def page_url(record: ImageRecord, ops: str, fmt: str) -> str:
    """The image page showing a pipeline's result."""
    return f"/images/{record.id}?" + urlencode({"ops": ops, **({"format": fmt} if fmt else {})})


async def similar_or_none(renderer: Renderer, image_id: str) -> list[SimilarImage]:
    """The images that look like this one; none when the catalog cannot say."""
    try:
        return await renderer.similar(image_id, limit=SIMILAR_LIMIT)
    except (DarkroomError, ValueError, KeyError, TypeError):  # the latter: not a list of them
        return []


@router.get("/images/{image_id}", name="image_page")
async def image_page(
    request: Request,
    image_id: str,
    renderer: RendererDep,
    ops: str = "",
    format: OutputFormat = "",
    op: str | None = None,
    action: Literal["apply", "add"] = "apply",
) -> Response:
    """One image: the original, its metadata, the processing form and the result."""
    record = await renderer.image(image_id)
    ops = ops.strip()
    # The operation list is cached for a while, so ask whether the processor answers now.
    outage, similar = await asyncio.gather(
        renderer.processing_outage(), similar_or_none(renderer, record.id)
    )
    operations = []
    if outage is None:
        try:
            operations = await renderer.operations()
        except ProcessingUnavailable as exc:
            outage = exc
    by_name = {operation.name: operation for operation in operations}
    steps = split_pipeline(ops)
    # The form starts from the last step, so adjusting a parameter is one edit away.
    selected, values = step_values(steps[-1]) if steps else ("rotate", {})
    refused: DarkroomError | None = None
    if op is not None and outage is None:
        # The processing form was submitted: check the edited pipeline, then go to its URL.
        if op not in by_name:
            raise InvalidInput(f"op: unknown operation {op!r}")
        try:
            new_ops = edited_pipeline(ops, build_step(by_name[op], request.query_params), action)
            await renderer.canonical(new_ops)
        except (BackendRejected, InvalidInput) as exc:
            # Keep the pipeline that worked and show the refused step in the form, to fix it.
            refused = exc
            selected, values = op, submitted_values(by_name[op], request.query_params)
        else:
            target = f"/images/{record.id}?" + urlencode(
                {"ops": new_ops, **({"format": format} if format else {})}
            )
            return RedirectResponse(target, status_code=303)

    result: Rendered | None = None
    error: DarkroomError | None = refused
    if ops and outage is None:
        try:
            result = await renderer.render(record, ops, format)
        except BackendRejected as exc:
            error = error or exc
        except ProcessingUnavailable as exc:
            outage = exc
    if selected not in by_name:
        selected, values = (operations[0].name if operations else ""), {}
    if record.format in BROWSER_FORMATS:
        original = display(
            record.width,
            f"/images/{record.id}/original",
            lambda width: render_url(record, f"resize:width={width}", ""),
        )
    else:  # HEIC, TIFF: browsers cannot show them, so the page shows them as JPEG
        original = display(
            record.width,
            render_url(record, "", "jpeg"),
            lambda width: render_url(record, f"resize:width={width}", "jpeg"),
        )
    shown = None
    if result is not None:
        shown = display(
            result.width,
            render_url(record, ops, format),
            lambda width: render_url(record, f"{ops}|resize:width={width}", format),
        )
    status = outage.status if outage else error.status if error else 200
    settings: Settings = request.app.state.settings
    extension = {"jpeg": "jpg"}.get(format, format) if format else None
    if result is not None and extension is None:
        extension = result.media_type.rpartition("/")[2].replace("jpeg", "jpg")
    moves = [
        tuple(
            None if moved is None else page_url(record, moved, format)
            for moved in (moved_step(ops, i, -1), moved_step(ops, i, +1))
        )
        for i in range(len(steps))
    ]
    histogram = f"/images/{record.id}/histogram"
    return templates.TemplateResponse(
        request,
        "image.html",
        {
            "image": record,
            "operations": [
                (operation, fields, prefilled(fields, values if operation.name == selected else {}))
                for operation in operations
                for fields in [form_fields(operation)]
            ],
            "selected": selected,
            "ops": ops,
            "steps": [
                (
                    step,
                    f"/images/{record.id}?"
                    + urlencode(
                        {"ops": without_step(ops, i), **({"format": format} if format else {})}
                    ),
                )
                for i, step in enumerate(steps)
            ],
            "format": format,
            "formats": OUTPUT_FORMATS,
            # While processing is down the original is shown as it is: nothing can shrink it.
            "original": original if outage is None else Display(original.full, None, original.full),
            "result": result,
            "shown": shown,
            "result_url": render_url(record, ops, format) if result else None,
            "download_url": render_url(record, ops, format, download="1") if result else None,
            "downloads": [
                (name, render_url(record, ops, name, download="1"))
                for name in (OUTPUT_FORMATS if result else ())
            ],
            "moves": moves,
            "curl": (
                curl_command(settings, record, result.pipeline, format, extension or "bin")
                if result
                else None
            ),
            "original_histogram": histogram,
            "result_histogram": f"{histogram}?{urlencode({'ops': ops})}" if result else None,
            "preview_url": f"/images/{record.id}/preview",
            "preview_width": PREVIEW_WIDTH,
            "histogram_url": histogram,
            "similar": similar,
            "error": error,
            "outage": outage,
        },
        status_code=status,
        headers=outage.headers() if outage else None,
    )


@router.api_route("/images/{image_id}/original", methods=["GET", "HEAD"], name="original")
async def original(
    image_id: str, renderer: RendererDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The original image bytes, immutable under their content hash."""
    return await renderer.original(image_id, if_none_match)


# Thumbnail sizes: the gallery's cells on ordinary screens, and on 2x (high-DPI) ones.
# Matched as text, so "640.0" or " 640" is refused rather than read as a number.
ThumbSize = Literal["320", "640"]


@router.api_route("/images/{image_id}/thumb", methods=["GET", "HEAD"], name="thumb")
async def thumb(
    image_id: str,
    renderer: RendererDep,
    size: Annotated[
        ThumbSize | None,
        Query(description="The square the thumbnail fits, in px; default the configured size."),
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A thumbnail that fits the gallery's square cells."""
    return await renderer.thumbnail(image_id, if_none_match, None if size is None else int(size))


async def picture_or_page(request: Request, answer: Awaitable[Response]) -> Response:
    """Await an image response; while processing is down an <img> gets a picture saying so.

    A script or a visitor (anything not asking for an image first) gets the error page.
    """
    try:
        return await answer
    except ProcessingUnavailable as exc:
        if request.headers.get("accept", "").startswith("image/"):
            return placeholder(exc)
        raise


@router.api_route("/images/{image_id}/render", methods=["GET", "HEAD"], name="render")
async def render_image(
    request: Request,
    image_id: str,
    renderer: RendererDep,
    ops: str = "",
    format: OutputFormat = "",
    download: bool = False,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The image processed by a pipeline, in the requested format."""
    return await picture_or_page(
        request,
        renderer.processed(image_id, ops.strip(), format, if_none_match, download=download),
    )


@router.api_route("/images/{image_id}/preview", methods=["GET", "HEAD"], name="preview")
async def preview(
    request: Request,
    image_id: str,
    renderer: RendererDep,
    ops: str = "",
    format: OutputFormat = "",
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The pipeline's result at most ``PREVIEW_WIDTH`` px wide, quick enough to follow a slider.

    A wide original gets a final ``resize``; a narrow one is rendered as it is, and resized
    after all when the pipeline widened it (an expanding rotation). ``X-Pipeline`` names
    the pipeline shown.
    """

    async def shown() -> Response:
        record = await renderer.image(image_id)
        pipeline = preview_pipeline(ops, record.width)
        if record.width <= PREVIEW_WIDTH and pipeline:
            rendered = await renderer.render(record, pipeline, format)
            pipeline = preview_pipeline(pipeline, rendered.width)
        response = await renderer.processed(image_id, pipeline, format, if_none_match)
        response.headers["X-Pipeline"] = pipeline
        return response

    return await picture_or_page(request, shown())


@router.api_route("/images/{image_id}/histogram", methods=["GET", "HEAD"], name="histogram")
async def histogram(
    request: Request,
    image_id: str,
    renderer: RendererDep,
    ops: str = "",
    if_none_match: IfNoneMatch = None,
) -> Response:
    """An SVG histogram of each channel's levels in the pipeline's result (or the original)."""
    return await picture_or_page(request, renderer.histogram(image_id, ops.strip(), if_none_match))


@dataclass(frozen=True)
class DuplicateMember:
    """One image of a group of near-duplicates, and whether it is the group's largest."""

    image: ImageRecord
    largest: bool


def members(group: DuplicateGroup) -> list[DuplicateMember]:
    """A group's images in the catalog's order, the one with most pixels (then bytes) marked."""
    if not group.images:
        return []
    best = max(group.images, key=lambda image: (image.pixels, image.bytes))
    return [DuplicateMember(image, image is best) for image in group.images]


@router.get("/duplicates", name="duplicates")
async def duplicates(
    request: Request,
    renderer: RendererDep,
    cursor: Annotated[str | None, Query(description="Where the page starts.")] = None,
) -> Response:
    """Groups of images that look alike, side by side, the largest of each marked."""
    page: DuplicatePage = await renderer.duplicates(cursor or None, limit=DUPLICATE_GROUPS)
    next_url = None
    if page.next_cursor:
        next_url = "/duplicates?" + urlencode({"cursor": page.next_cursor})
    return templates.TemplateResponse(
        request,
        "duplicates.html",
        {
            "groups": [(group, members(group)) for group in page.items],
            "next_url": next_url,
            "first_url": "/duplicates" if cursor else None,
            "cursor": cursor,
        },
    )
