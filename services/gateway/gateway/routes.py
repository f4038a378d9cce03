"""Gateway pages and image routes."""

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, BeforeValidator, Field

from gateway.clients import ImagePage, ImageRecord, Rendered
from gateway.errors import BackendRejected, InvalidInput
from gateway.forms import build_step, form_fields, prefilled, split_pipeline, step_values
from gateway.rendering import Renderer

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


def render_url(record: ImageRecord, ops: str, fmt: str, **extra: str) -> str:
    """URL of the processed image."""
    query = {"ops": ops, **({"format": fmt} if fmt else {}), **extra}
    return f"/images/{record.id}/render?{urlencode(query)}"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the gateway answers (backends are reported by the pages themselves)."""
    return {"status": "ok", "service": "gateway"}


@router.get("/", name="gallery")
async def gallery(
    request: Request,
    query: Annotated[GalleryQuery, Query()],
    renderer: RendererDep,
) -> Response:
    """The gallery: a query form and a grid of thumbnails, one page at a time."""
    error: BackendRejected | None = None
    try:
        page = await renderer.page(query.filters(), query.cursor)
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
    renderer: RendererDep,
    ops: str = "",
    format: OutputFormat = "",
    op: str | None = None,
    action: Literal["apply", "add"] = "apply",
) -> Response:
    """One image: the original, its metadata, the processing form and the result."""
    record = await renderer.image(image_id)
    operations = await renderer.operations()
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
            result = await renderer.render(record, ops, format)
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
    image_id: str, renderer: RendererDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The original image bytes, immutable under their content hash."""
    return await renderer.original(image_id, if_none_match)


@router.get("/images/{image_id}/thumb", name="thumb")
async def thumb(
    image_id: str,
    renderer: RendererDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A thumbnail that fits the gallery's square cells."""
    return await renderer.thumbnail(image_id, if_none_match)


@router.get("/images/{image_id}/render", name="render")
async def render_image(
    image_id: str,
    renderer: RendererDep,
    ops: str = "",
    format: OutputFormat = "",
    download: bool = False,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The image processed by a pipeline, in the requested format."""
    response = await renderer.processed(image_id, ops.strip(), format, if_none_match)
    if download and response.status_code == 200:
        extension = response.media_type.split("/")[-1] if response.media_type else "bin"
        stem = Path(image_id).stem
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{stem}-processed.{extension}"'
        )
    return response
