"""httpx clients for the catalog and the processor, mapping wire failures to gateway errors."""

import math
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from gateway.errors import (
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ImageNotFound,
    ImageTooLarge,
)
from gateway.observability import REQUEST_ID_HEADER, request_id


class Location(BaseModel):
    """Where a photo was taken, in degrees (WGS 84)."""

    lat: float
    lon: float


class ImageRecord(BaseModel):
    """An image's metadata as the catalog reports it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    sha256: str
    format: str
    mode: str
    width: int
    height: int
    pixels: int
    aspect: float
    orientation: str
    bytes: int
    exif_orientation: int
    created: datetime
    # What the photo itself says (EXIF) and what it looks like; None when unknown.
    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    camera: str | None = None
    has_location: bool | None = None
    location: Location | None = None
    dominant_colour: str | None = None
    colour: str | None = None
    phash: str | None = None


class ImagePage(BaseModel):
    """One page of catalog query results."""

    items: list[ImageRecord]
    next_cursor: str | None = None


class CameraCount(BaseModel):
    """A camera's display name and how many of the catalog's images it took."""

    model_config = ConfigDict(extra="ignore")

    camera: str
    count: int


class SimilarImage(BaseModel):
    """An image that looks like another, and how far apart their perceptual hashes are."""

    model_config = ConfigDict(extra="ignore")

    image: ImageRecord
    distance: int


class DuplicateGroup(BaseModel):
    """Images whose perceptual hashes are near each other, the largest first."""

    model_config = ConfigDict(extra="ignore")

    group: str
    images: list[ImageRecord]


class DuplicatePage(BaseModel):
    """One page of groups of near-duplicate images."""

    model_config = ConfigDict(extra="ignore")

    items: list[DuplicateGroup]
    next_cursor: str | None = None


class OperationInfo(BaseModel):
    """One processor operation: its name, summary and parameter JSON schema."""

    model_config = ConfigDict(extra="ignore")

    name: str
    summary: str
    output: str = "photo"
    params: dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """A processed image and what the processor said about it."""

    content: bytes
    media_type: str
    width: int
    height: int
    pipeline: str


@dataclass(frozen=True)
class Original:
    """An original image's bytes and media type."""

    content: bytes
    media_type: str


@dataclass(frozen=True)
class Stored:
    """An uploaded image's record, and whether the catalog added it or already had it."""

    record: ImageRecord
    created: bool


class Histogram(BaseModel):
    """Counts of each channel's 256 levels in a pipeline's result, as the processor reports them."""

    model_config = ConfigDict(extra="ignore")

    channels: list[str]
    counts: list[list[int]]
    width: int
    height: int


class ServiceClient:
    """A backend reached over HTTP; every failure becomes a gateway error."""

    service = "backend"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        retry_after: int = 5,
        max_bytes: int = 64 * 1024 * 1024,
        render_timeout: httpx.Timeout | None = None,
    ) -> None:
        self.http = http
        self.retry_after = retry_after
        self.max_bytes = max_bytes
        # Calls that move image bytes get this budget; the client's own is for metadata.
        self.render_timeout = render_timeout or http.timeout

    async def request(
        self, method: str, url: str, *, max_bytes: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; raise BackendUnavailable or BackendRejected unless it succeeded.

        The body is read in full, but never more than ``max_bytes`` (default: the
        client's ``max_bytes``): a larger one is refused as ImageTooLarge.
        """
        response = await self.open(method, url, **kwargs)
        try:
            body = await self._read(response, self.max_bytes if max_bytes is None else max_bytes)
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=response.request
        )

    async def open(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request and return the successful response with its body still to stream.

        The request carries the id of the request being handled (``X-Request-ID``). The
        caller closes the response (``aclose``). Failures raise as ``request`` says.
        """
        request = self.http.build_request(method, url, **kwargs)
        current = request_id.get()
        if current is not None:
            request.headers[REQUEST_ID_HEADER] = current
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise self.timed_out(request) from exc
        except httpx.TransportError as exc:
            raise self.unavailable(
                f"the {self.service} at {self.http.base_url} cannot be reached"
            ) from exc
        if response.status_code < 400:
            return response
        try:
            error = httpx.Response(
                response.status_code,
                headers=response.headers,
                content=await self._read(response, _ERROR_BYTES),
                request=response.request,
            )
        except ImageTooLarge:
            error = httpx.Response(response.status_code, request=response.request)
        finally:
            await response.aclose()
        if error.status_code >= 500:
            raise self.unavailable(
                f"the {self.service} failed with status {error.status_code}: "
                f"{_error_message(error)}"
            )
        # The visitor's request was refused: the backend's own words, status and code,
        # and its Retry-After (a 429's), not a 503 naming an internal service.
        rejected = BackendRejected(
            _error_message(error), status=error.status_code, code=_error_code(error)
        )
        rejected.retry_after = _retry_after(error)
        raise rejected

    async def _read(self, response: httpx.Response, limit: int) -> bytes:
        """The response body, refused as soon as it is over ``limit`` bytes."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ImageTooLarge(f"{int(declared):,} bytes is more than the {limit:,} allowed")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ImageTooLarge(f"more than the {limit:,} bytes allowed")
                chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise self.timed_out(response.request) from exc
        except httpx.TransportError as exc:
            raise self.unavailable(f"the {self.service} broke off its answer") from exc
        return b"".join(chunks)

    def timed_out(self, request: httpx.Request) -> BackendTimeout:
        """Build the 504 error for a call this backend did not answer within its budget."""
        budget = request.extensions.get("timeout", {}).get("read")
        within = f" within {budget:g} s" if isinstance(budget, int | float) else " in time"
        return BackendTimeout(
            f"The {self.service} did not answer{within}. Try again in a moment.",
            retry_after=self.retry_after,
        )

    def unavailable(self, reason: str) -> BackendUnavailable:
        """Build the 503 error for this backend."""
        return BackendUnavailable(
            f"{reason.capitalize()}. Try again in a moment.", retry_after=self.retry_after
        )


IMAGE_ID = re.compile(r"[0-9a-f]{1,64}")


def image_path(image_id: str) -> str:
    """The catalog path of an image; ids that cannot exist never reach the wire."""
    if not IMAGE_ID.fullmatch(image_id):
        raise ImageNotFound(image_id)
    return f"/v1/images/{image_id}"


async def file_part(
    boundary: str, filename: str, content_type: str, chunks: AsyncIterable[bytes]
) -> AsyncIterator[bytes]:
    """A multipart/form-data body of one ``file`` part, its bytes streamed from ``chunks``."""
    # Quoted-string escapes, which the catalog's parser undoes; a header cannot hold CR or LF.
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    quoted = quoted.replace("\r", "").replace("\n", "")
    media = content_type.replace("\r", "").replace("\n", "") or "application/octet-stream"
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        f"Content-Type: {media}\r\n\r\n"
    ).encode()
    async for chunk in chunks:
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


class CatalogClient(ServiceClient):
    """The catalog service: image metadata and originals."""

    service = "catalog"

    async def list_images(self, params: list[tuple[str, str]]) -> ImagePage:
        """Query images by the catalog's filters, sort and cursor."""
        response = await self.request("GET", "/v1/images", params=params)
        return ImagePage.model_validate(response.json())

    async def cameras(self) -> list[CameraCount]:
        """The cameras that took the catalog's images, the most used first."""
        response = await self.request("GET", "/v1/cameras")
        return [CameraCount.model_validate(item) for item in response.json()["items"]]

    async def similar(self, image_id: str, *, limit: int) -> list[SimilarImage]:
        """The images that look like this one, nearest first."""
        response = await self.image_request("GET", image_id, "/similar", params={"limit": limit})
        return [SimilarImage.model_validate(item) for item in response.json()["items"]]

    async def duplicates(self, params: list[tuple[str, str]]) -> DuplicatePage:
        """One page of groups of near-duplicate images."""
        response = await self.request("GET", "/v1/duplicates", params=params)
        return DuplicatePage.model_validate(response.json())

    async def image_request(
        self, method: str, image_id: str, suffix: str = "", *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send a request about one image; ImageNotFound when the catalog has no such image.

        With ``stream`` the body is left to stream, as ``open`` does.
        """
        send = self.open if stream else self.request
        try:
            return await send(method, image_path(image_id) + suffix, **kwargs)
        except BackendRejected as exc:
            if exc.code == "image_not_found":
                raise ImageNotFound(image_id) from None
            raise

    async def get_image(self, image_id: str) -> ImageRecord:
        """Fetch one image's metadata."""
        response = await self.image_request("GET", image_id)
        return ImageRecord.model_validate(response.json())

    async def content(self, image_id: str) -> Original:
        """Fetch one image's original bytes."""
        response = await self.image_request(
            "GET", image_id, "/content", timeout=self.render_timeout
        )
        media_type = response.headers.get("content-type", "application/octet-stream")
        return Original(response.content, media_type)

    async def open_content(self, image_id: str) -> httpx.Response:
        """Open one image's original bytes for streaming on; the caller closes the response."""
        return await self.image_request(
            "GET", image_id, "/content", stream=True, timeout=self.render_timeout
        )

    async def upload(
        self, filename: str, content_type: str, chunks: AsyncIterable[bytes]
    ) -> Stored:
        """Stream one file to the catalog as the ``file`` part of a form; 201 added, 200 known."""
        boundary = secrets.token_hex(16)
        response = await self.request(
            "POST",
            "/v1/images",
            content=file_part(boundary, filename, content_type, chunks),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=self.render_timeout,
        )
        return Stored(ImageRecord.model_validate(response.json()), response.status_code == 201)

    async def delete(self, image_id: str) -> None:
        """Delete one image and its original; ImageNotFound when the catalog has no such image."""
        await self.image_request("DELETE", image_id)


class ProcessorClient(ServiceClient):
    """The processor service: operations over image bytes."""

    service = "processor"

    async def operations(self) -> list[OperationInfo]:
        """List the operations the processor offers."""
        response = await self.request("GET", "/v1/operations")
        return [OperationInfo.model_validate(item) for item in response.json()]

    async def canonical(self, ops: str) -> str:
        """Validate a pipeline and return the processor's canonical text for it."""
        response = await self.request("GET", "/v1/pipeline", params={"ops": ops})
        return str(response.json()["pipeline"])

    async def process(self, original: Original, ops: str, fmt: str | None) -> Rendered:
        """Run a pipeline over an original and return the encoded result."""
        params = {"ops": ops}
        if fmt:
            params["format"] = fmt
        response = await self.request(
            "POST",
            "/v1/process",
            params=params,
            content=original.content,
            headers={"Content-Type": original.media_type},
            timeout=self.render_timeout,
        )
        return Rendered(
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            width=int(response.headers.get("x-image-width", 0)),
            height=int(response.headers.get("x-image-height", 0)),
            pipeline=response.headers.get("x-pipeline", ops),
        )

    async def histogram(self, original: Original, ops: str) -> Histogram:
        """Count each channel's levels in the result of a pipeline over an original."""
        response = await self.request(
            "POST",
            "/v1/histogram",
            params={"ops": ops},
            content=original.content,
            headers={"Content-Type": original.media_type},
            timeout=self.render_timeout,
        )
        return Histogram.model_validate(response.json())


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_code(response: httpx.Response) -> str:
    return str(_error_body(response).get("code", f"http_{response.status_code}"))


def _error_message(response: httpx.Response) -> str:
    message = _error_body(response).get("message")
    return str(message) if message else response.reason_phrase or "no detail given"


# An error answer is a short JSON document; more than this is not read.
_ERROR_BYTES = 64 * 1024
_DELAY = re.compile(r"[0-9]{1,9}")


def _retry_after(response: httpx.Response) -> int | None:
    """The backend's Retry-After in whole seconds, whether sent as a delay or as a date."""
    value = response.headers.get("retry-after", "").strip()
    if _DELAY.fullmatch(value):
        return int(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": a date in UTC whose sender names no zone
        moment = moment.replace(tzinfo=UTC)
    return max(0, math.ceil((moment - datetime.now(UTC)).total_seconds()))
