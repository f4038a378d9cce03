"""Adding images from the browser (``/upload``) and deleting them (``/images/{id}/delete``).

A form post may carry many files. The form is parsed as it streams in, and each file part
is streamed on to the catalog's ``POST /v1/images`` as it arrives, one file at a time, so
the gateway never holds a whole file: the catalog's own limit bounds each one (413) and
its checks refuse what is not a whole image (415). Each file is answered as added,
already present, refused (the catalog's reason) or failed (the catalog could not be
reached): as a page, or as JSON for the page's script, which sends one file per request
so that each has its own progress bar.

Deleting leaves the renderer's cached results alone: they are keyed by the image's
SHA-256, every route asks the catalog for the record first (so nothing of a deleted image
is served), and the same bytes uploaded again would give the same results.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from gateway.clients import CatalogClient, Stored
from gateway.errors import BackendRejected, BackendUnavailable, DarkroomError, InvalidInput
from gateway.routes import RendererDep, gallery_url, templates

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

router = APIRouter()

FILE_FIELD = "file"
# One form's files are answered in one page, so there is a bound (the script sends one at a time).
MAX_FILES = 100
# Chunks waiting between the form parser and the catalog request: back-pressure on the browser.
PIPE_CHUNKS = 4
CHOOSE_A_FILE = "Choose at least one image file to upload."

Status = Literal["added", "present", "refused", "failed"]
STATUS_LABELS: dict[str, str] = {
    "added": "Added",
    "present": "Already in the catalog",
    "refused": "Refused",
    "failed": "Not uploaded",
}


def explained(error: DarkroomError) -> DarkroomError:
    """The catalog's 401 or 403 said in terms of the gateway's setting; other errors as they are."""
    if isinstance(error, BackendRejected) and error.status in (401, 403):
        return BackendRejected(
            f"The catalog refused the gateway's key ({error.code}: {error.message}). "
            "Set GATEWAY_CATALOG_KEY to one of the catalog's CATALOG_API_KEYS.",
            status=error.status,
            code=error.code,
        )
    return error


@dataclass(frozen=True)
class Outcome:
    """What became of one uploaded file, and the HTTP status that says it."""

    name: str
    status: Status
    message: str
    http_status: int
    image_id: str | None = None
    error: DarkroomError | None = field(default=None, compare=False)

    @classmethod
    def stored(cls, name: str, stored: Stored) -> "Outcome":
        """A file the catalog now holds: just added, or already there under some name."""
        if stored.created:
            return cls(name, "added", "Added to the catalog.", 201, stored.record.id)
        message = f"Already in the catalog as “{stored.record.name}”."
        return cls(name, "present", message, 200, stored.record.id)

    @classmethod
    def refused(cls, name: str, error: DarkroomError) -> "Outcome":
        """A file that was not stored: refused by the catalog, or the catalog not reached."""
        error = explained(error)
        status: Status = "failed" if isinstance(error, BackendUnavailable) else "refused"
        return cls(name, status, error.message, error.status, error=error)

    @property
    def url(self) -> str | None:
        """The image's page, for a file the catalog holds."""
        return f"/images/{self.image_id}" if self.image_id else None

    @property
    def stored_ok(self) -> bool:
        """Whether the catalog holds the file now."""
        return self.status in ("added", "present")

    @property
    def gateway_fault(self) -> bool:
        """Whether the file failed for the gateway's sake (catalog down, key refused)."""
        return self.status == "failed" or self.http_status in (401, 403)

    def public(self) -> dict[str, Any]:
        """The JSON answer for this file."""
        return {
            "name": self.name,
            "status": self.status,
            "id": self.image_id,
            "url": self.url,
            "message": self.message,
        }


def report_status(outcomes: Sequence[Outcome]) -> int:
    """200 when any file is stored; otherwise the first file's refusal."""
    return 200 if any(o.stored_ok for o in outcomes) else outcomes[0].http_status


def page_error(outcomes: Sequence[Outcome]) -> DarkroomError | None:
    """The one error to show above the list when no file could be stored for the gateway's sake."""
    if outcomes and all(o.gateway_fault for o in outcomes):
        return outcomes[0].error
    return None


@dataclass(frozen=True)
class PartStart:
    """The headers of one part of a form: its field name, file name and media type."""

    field: str
    filename: str | None
    content_type: str


# A form streams in as: PartStart, the part's bytes in chunks, None at the part's end.
FormEvent = PartStart | bytes | None


class _FormParts:
    """python-multipart's callbacks, collected as events to hand out after each write."""

    def __init__(self) -> None:
        self.events: list[FormEvent] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def take(self) -> list[FormEvent]:
        """The events since the last call."""
        events, self.events = self.events, []
        return events

    def callbacks(self) -> "MultipartCallbacks":
        """The callbacks to give the parser."""
        return {
            "on_part_begin": self._headers.clear,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = options.get(b"filename")
        self.events.append(
            PartStart(
                field=options.get(b"name", b"").decode("utf-8", "replace"),
                filename=raw_name.decode("utf-8", "replace") if raw_name is not None else None,
                content_type=self._headers.get(b"content-type", b"").decode("latin-1"),
            )
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(data[start:end])

    def _part_end(self) -> None:
        self.events.append(None)

    def _end(self) -> None:
        self.ended = True


async def form_events(request: Request) -> AsyncIterator[FormEvent]:
    """The parts of a multipart/form-data request as they stream in."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidInput(
            f"{CHOOSE_A_FILE} (Send files as multipart/form-data, each in a field named "
            f"{FILE_FIELD!r}.)"
        )
    parts = _FormParts()
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
            for event in parts.take():
                yield event
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise InvalidInput(f"The form cannot be read: {exc}.") from None
    for event in parts.take():
        yield event
    if not parts.ended:
        raise InvalidInput("The form ends before its last part does: send it again.")


class FilePipe:
    """One file on its way to the catalog: the form parser puts chunks in, the upload takes them."""

    def __init__(self, catalog: CatalogClient, name: str, content_type: str) -> None:
        self.name = name
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=PIPE_CHUNKS)
        self.task = asyncio.ensure_future(catalog.upload(name, content_type, self._drain()))

    async def _drain(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def put(self, chunk: bytes | None) -> None:
        """Hand on a chunk (None: the file ended); dropped once the catalog has answered."""
        if self.task.done():
            # The catalog answered before the end (a 413, say): the rest of the file goes nowhere.
            return
        if not self._chunks.full():
            self._chunks.put_nowait(chunk)
            return
        waiting = asyncio.ensure_future(self._chunks.put(chunk))
        await asyncio.wait({waiting, self.task}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()

    async def outcome(self) -> Outcome:
        """End the file and say what the catalog made of it."""
        await self.put(None)
        try:
            stored = await self.task
        except DarkroomError as exc:
            return Outcome.refused(self.name, exc)
        return Outcome.stored(self.name, stored)

    def abandon(self) -> None:
        """Give up on a file whose form broke off: the catalog never stores a partial one."""
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()  # retrieved, so an error nobody awaits is not reported


async def receive_files(request: Request, catalog: CatalogClient) -> list[Outcome]:
    """Stream each file of the form to the catalog as it arrives, and say what became of each."""
    outcomes: list[Outcome] = []
    skipped = 0
    pipe: FilePipe | None = None
    try:
        async for event in form_events(request):
            if isinstance(event, PartStart):
                # An empty file input sends a part with an empty file name: no file chosen.
                if event.field != FILE_FIELD or not event.filename:
                    continue
                if len(outcomes) >= MAX_FILES:
                    skipped += 1
                    continue
                pipe = FilePipe(catalog, event.filename, event.content_type)
            elif event is None:
                if pipe is not None:
                    outcomes.append(await pipe.outcome())
                    pipe = None
            elif pipe is not None:
                await pipe.put(event)
    finally:
        if pipe is not None:
            pipe.abandon()
    if skipped:
        outcomes.append(
            Outcome(
                f"{skipped} more file{'' if skipped == 1 else 's'}",
                "refused",
                f"At most {MAX_FILES} files are taken in one form: send these again.",
                413,
            )
        )
    return outcomes


def upload_page(
    request: Request,
    outcomes: Sequence[Outcome] = (),
    error: DarkroomError | None = None,
    status: int = 200,
) -> Response:
    """The upload form, with what became of the files just sent and any error above them."""
    return templates.TemplateResponse(
        request,
        "upload.html",
        {"outcomes": outcomes, "error": error, "labels": STATUS_LABELS},
        status_code=status,
        headers=error.headers() if error else None,
    )


@router.get("/upload", name="upload_form")
async def upload_form(request: Request) -> Response:
    """The upload page: a form for one or more files, and a drop zone with JavaScript."""
    return upload_page(request)


@router.post("/upload", name="upload")
async def upload(request: Request, renderer: RendererDep) -> Response:
    """Each file of the form streamed to the catalog; a page, or JSON, saying what became of it."""
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        outcomes = await receive_files(request, renderer.catalog)
        if not outcomes:
            raise InvalidInput(CHOOSE_A_FILE)
    except ClientDisconnect:
        # The visitor left mid-form: nobody reads this answer, and no partial file was stored.
        return Response(status_code=400)
    except InvalidInput as exc:
        if wants_json:
            return JSONResponse(Outcome.refused("", exc).public(), status_code=exc.status)
        return upload_page(request, error=exc, status=exc.status)
    if wants_json:
        if len(outcomes) == 1:
            return JSONResponse(outcomes[0].public(), status_code=outcomes[0].http_status)
        return JSONResponse([o.public() for o in outcomes], status_code=report_status(outcomes))
    return upload_page(request, outcomes, page_error(outcomes), report_status(outcomes))


# Pages a deletion can return to, other than the gallery.
DeleteBack = Literal["duplicates"]


@router.get("/images/{image_id}/delete", name="confirm_delete")
async def confirm_delete(
    request: Request, image_id: str, renderer: RendererDep, back: DeleteBack | None = None
) -> Response:
    """Ask before deleting: the image's name and thumbnail, a Delete button and a way back."""
    record = await renderer.image(image_id)
    return templates.TemplateResponse(
        request, "confirm_delete.html", {"image": record, "error": None, "back": back}
    )


@router.post("/images/{image_id}/delete", name="delete_image")
async def delete_image(
    request: Request, image_id: str, renderer: RendererDep, back: DeleteBack | None = None
) -> Response:
    """Delete the image through the catalog, then back to the gallery (or ``back``) saying so."""
    record = await renderer.image(image_id)
    try:
        await renderer.catalog.delete(record.id)
    except BackendRejected as exc:
        error = explained(exc)
        return templates.TemplateResponse(
            request,
            "confirm_delete.html",
            {"image": record, "error": error, "back": back},
            status_code=error.status,
            headers=error.headers(),
        )
    target = f"/{back}" if back else gallery_url(request)
    separator = "&" if "?" in target else "?"
    return RedirectResponse(
        f"{target}{separator}{urlencode({'deleted': record.name})}", status_code=303
    )
