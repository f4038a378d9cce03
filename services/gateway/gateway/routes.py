"""Gateway pages and image routes."""

import hashlib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, BeforeValidator, Field

from gateway.cache import OperationsCache, ResultCache
from gateway.clients import CatalogClient, ImagePage, ImageRecord, ProcessorClient, Rendered
from gateway.config import Settings, get_settings
from gateway.errors import BackendRejected, InvalidInput
from gateway.forms import build_step, form_fields, prefilled, split_pipeline, step_values

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter()

OUTPUT_FORMATS = ("jpeg", "png", "webp")
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
}
ORIGINAL_CACHE = "public, max-age=31536000, immutable"
# Results depend on the processor's version as well as on the image, so they are revalidated.
RESULT_CACHE = "public, max-age=3600"


def get_catalog(request: Request) -> CatalogClient:
    """The catalog client built at start-up."""
    client: CatalogClient = request.app.state.catalog
    return client


def get_processor(request: Request) -> ProcessorClient:
    """The processor client built at start-up."""
    client: ProcessorClient = request.app.state.processor
    return client


def get_result_cache(request: Request) -> ResultCache:
    """The in-memory cache of processed results."""
    cache: ResultCache = request.app.state.results
    return cache


def get_operations_cache(request: Request) -> OperationsCache:
    """The cached list of processor operations."""
    cache: OperationsCache = request.app.state.operations
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[CatalogClient, Depends(get_catalog)]
ProcessorDep = Annotated[ProcessorClient, Depends(get_processor)]
ResultsDep = Annotated[ResultCache, Depends(get_result_cache)]
OperationsDep = Annotated[OperationsCache, Depends(get_operations_cache)]
IfNoneMatch = Annotated[str | None, Header()]


def _blank_to_none(value: object) -> object:
    """HTML forms send empty inputs as empty strings; they mean 'no filter'."""
    return None if value == "" else value


Dimension = Annotated[
    Annotated[int, Field(ge=1, le=1_000_000)] | None, BeforeValidator(_blank_to_none)
]


class GalleryQuery(BaseModel):
    """The gallery's query form."""

    min_width: Dimension = None
    max_width: Dimension = None
    min_height: Dimension = None
    max_height: Dimension = None
    sort: Literal[tuple(SORTS)] = "-created"  # type: ignore[valid-type]
    cursor: Annotated[str | None, BeforeValidator(_blank_to_none)] = None

    def filters(self) -> list[tuple[str, str]]:
        """The filters and sort as query parameters, without the cursor."""
        fields = self.model_dump(exclude={"cursor"}, exclude_none=True)
        return [(key, str(value)) for key, value in fields.items()]


OutputFormat = Annotated[
    Literal["", "jpeg", "png", "webp"],
    Query(description="Output format; empty for the processor's default."),
]


def result_key(record: ImageRecord, ops: str, fmt: str) -> tuple[str, str, str]:
    """Cache key of a processed result."""
    return (record.sha256, ops, fmt)


def result_etag(record: ImageRecord, ops: str, fmt: str) -> str:
    """A strong ETag for a processed result."""
    digest = hashlib.blake2b(f"{ops}\n{fmt}".encode(), digest_size=8).hexdigest()
    return f'"{record.sha256[:16]}-{digest}"'


def render_url(record: ImageRecord, ops: str, fmt: str, **extra: str) -> str:
    """URL of the processed image."""
    query = {"ops": ops, **({"format": fmt} if fmt else {}), **extra}
    return f"/images/{record.id}/render?{urlencode(query)}"


async def render(
    record: ImageRecord,
    ops: str,
    fmt: str,
    catalog: CatalogClient,
    processor: ProcessorClient,
    results: ResultCache,
) -> Rendered:
    """Process an image through the cache: originals are fetched only on a miss."""
    key = result_key(record, ops, fmt)
    cached = results.get(key)
    if cached is not None:
        return cached
    original = await catalog.content(record.id)
    rendered = await processor.process(original, ops, fmt or None)
    results.put(key, rendered)
    return rendered


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """Whether an If-None-Match header names this ETag."""
    return bool(if_none_match) and etag in {tag.strip() for tag in (if_none_match or "").split(",")}


def not_modified(etag: str, cache_control: str) -> Response:
    """A 304 that repeats the validators."""
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})


def image_response(content: bytes, media_type: str, etag: str, cache_control: str) -> Response:
    """An image response with its validators."""
    headers = {"ETag": etag, "Cache-Control": cache_control}
    return Response(content, media_type=media_type, headers=headers)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the gateway answers (backends are reported by the pages themselves)."""
    return {"status": "ok", "service": "gateway"}


@router.get("/", name="gallery")
async def gallery(
    request: Request,
    query: Annotated[GalleryQuery, Query()],
    catalog: CatalogDep,
    settings: SettingsDep,
) -> Response:
    """The gallery: a query form and a grid of thumbnails, one page at a time."""
    params = [*query.filters(), ("limit", str(settings.page_size))]
    if query.cursor:
        params.append(("cursor", query.cursor))
    error: BackendRejected | None = None
    try:
        page = await catalog.list_images(params)
    except BackendRejected as exc:
        # A query the catalog refuses (min above max, say) is shown above the form that made it.
        page, error = ImagePage(items=[]), exc
    next_url = None
    if page.next_cursor:
        next_url = "/?" + urlencode([*query.filters(), ("cursor", page.next_cursor)])
    return templates.TemplateResponse(
        request,
        "gallery.html",
        {
            "query": query,
            "sorts": SORTS,
            "images": page.items,
            "next_url": next_url,
            "first_url": "/?" + urlencode(query.filters()) if query.cursor else None,
            "error": error,
        },
        status_code=error.status if error else 200,
    )


@router.get("/images/{image_id}", name="image_page")
async def image_page(
    request: Request,
    image_id: str,
    catalog: CatalogDep,
    processor: ProcessorDep,
    results: ResultsDep,
    operations_cache: OperationsDep,
    ops: str = "",
    format: OutputFormat = "",
    op: str | None = None,
    action: Literal["apply", "add"] = "apply",
) -> Response:
    """One image: the original, its metadata, the processing form and the result."""
    record = await catalog.get_image(image_id)
    operations = await operations_cache.get(processor)
    by_name = {operation.name: operation for operation in operations}
    ops = ops.strip()
    if op is not None:
        # The processing form was submitted: add its step and redirect to the result's URL.
        if op not in by_name:
            raise InvalidInput(f"op: unknown operation {op!r}")
        step = build_step(by_name[op], request.query_params)
        new_ops = f"{ops}|{step}" if ops and action == "add" else step
        target = f"/images/{record.id}?" + urlencode(
            {"ops": new_ops, **({"format": format} if format else {})}
        )
        return RedirectResponse(target, status_code=303)

    result: Rendered | None = None
    error: BackendRejected | None = None
    if ops:
        try:
            result = await render(record, ops, format, catalog, processor, results)
        except BackendRejected as exc:
            error = exc
    steps = split_pipeline(ops)
    # The form starts from the last step, so adjusting a parameter is one edit away.
    selected, values = step_values(steps[-1]) if steps else ("rotate", {})
    if selected not in by_name:
        selected, values = (operations[0].name if operations else ""), {}
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
            "steps": steps,
            "format": format,
            "formats": OUTPUT_FORMATS,
            "result": result,
            "result_url": render_url(record, ops, format) if result else None,
            "download_url": render_url(record, ops, format, download="1") if result else None,
            "error": error,
        },
        status_code=error.status if error else 200,
    )


@router.get("/images/{image_id}/original", name="original")
async def original(
    image_id: str, catalog: CatalogDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The original image bytes, immutable under their content hash."""
    record = await catalog.get_image(image_id)
    etag = f'"{record.sha256}"'
    if etag_matches(etag, if_none_match):
        return not_modified(etag, ORIGINAL_CACHE)
    content = await catalog.content(record.id)
    return image_response(content.content, content.media_type, etag, ORIGINAL_CACHE)


@router.get("/images/{image_id}/thumb", name="thumb")
async def thumb(
    image_id: str,
    catalog: CatalogDep,
    processor: ProcessorDep,
    results: ResultsDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A thumbnail that fits the gallery's square cells."""
    size = settings.thumb_size
    ops = f"resize:width={size},height={size},fit=contain"
    return await _processed(image_id, ops, "jpeg", catalog, processor, results, if_none_match)


@router.get("/images/{image_id}/render", name="render")
async def render_image(
    image_id: str,
    catalog: CatalogDep,
    processor: ProcessorDep,
    results: ResultsDep,
    ops: str = "",
    format: OutputFormat = "",
    download: bool = False,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The image processed by a pipeline, in the requested format."""
    response = await _processed(
        image_id, ops.strip(), format, catalog, processor, results, if_none_match
    )
    if download and response.status_code == 200:
        extension = response.media_type.split("/")[-1] if response.media_type else "bin"
        stem = Path(image_id).stem
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{stem}-processed.{extension}"'
        )
    return response


async def _processed(
    image_id: str,
    ops: str,
    fmt: str,
    catalog: CatalogClient,
    processor: ProcessorClient,
    results: ResultCache,
    if_none_match: str | None,
) -> Response:
    record = await catalog.get_image(image_id)
    etag = result_etag(record, ops, fmt)
    if etag_matches(etag, if_none_match):
        return not_modified(etag, RESULT_CACHE)
    rendered = await render(record, ops, fmt, catalog, processor, results)
    return image_response(rendered.content, rendered.media_type, etag, RESULT_CACHE)
