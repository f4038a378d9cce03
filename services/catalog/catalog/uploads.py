"""Read an upload's bytes, raw or as the `file` part of a multipart form, within a size limit."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from catalog.errors import BodyTooLarge, MalformedUpload

FILE_FIELD = "file"


@dataclass
class Upload:
    """The uploaded bytes and, for multipart, the file name the client gave."""

    data: bytes
    filename: str | None = None


@dataclass
class _FilePart:
    """Keeps the first `file` part as the multipart parser streams through the body."""

    data: list[bytes] = field(default_factory=list)
    filename: str | None = None
    found: bool = False
    ended: bool = False
    _collecting: bool = False
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _headers: dict[bytes, bytes] = field(default_factory=dict)

    def on_part_begin(self) -> None:
        self._headers.clear()
        self._collecting = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == FILE_FIELD.encode() and not self.found:
            self.found = self._collecting = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._collecting:
            self.data.append(data[start:end])

    def on_part_end(self) -> None:
        self._collecting = False

    def on_end(self) -> None:
        self.ended = True


async def read_upload(request: Request, limit: int) -> Upload:
    """The image bytes of a raw or multipart/form-data body, refused once past limit bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body is {declared} bytes; the limit is {limit}")
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        return Upload(b"".join([chunk async for chunk in _bounded(request, limit)]))
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedUpload("multipart/form-data without a boundary in Content-Type")
    part = _FilePart()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": part.on_part_begin,
            "on_header_field": part.on_header_field,
            "on_header_value": part.on_header_value,
            "on_header_end": part.on_header_end,
            "on_headers_finished": part.on_headers_finished,
            "on_part_data": part.on_part_data,
            "on_part_end": part.on_part_end,
            "on_end": part.on_end,
        },
    )
    try:
        async for chunk in _bounded(request, limit):
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise MalformedUpload(f"malformed multipart body: {exc}") from None
    if not part.ended:
        raise MalformedUpload("malformed multipart body: it ends before the closing boundary")
    if not part.found:
        raise MalformedUpload(f"multipart body has no {FILE_FIELD!r} part with the image")
    return Upload(b"".join(part.data), part.filename)


async def _bounded(request: Request, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
        yield chunk
