"""httpx clients for the catalog and the processor, mapping wire failures to gateway errors."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from gateway.errors import BackendRejected, BackendUnavailable, ImageNotFound


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


class ImagePage(BaseModel):
    """One page of catalog query results."""

    items: list[ImageRecord]
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


class ServiceClient:
    """A backend reached over HTTP; every failure becomes a gateway error."""

    service = "backend"

    def __init__(self, http: httpx.AsyncClient, *, retry_after: int = 5) -> None:
        self.http = http
        self.retry_after = retry_after

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise BackendUnavailable or BackendRejected unless it succeeded."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise self.unavailable(f"the {self.service} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise self.unavailable(
                f"the {self.service} at {self.http.base_url} cannot be reached"
            ) from exc
        if response.status_code >= 500:
            raise self.unavailable(
                f"the {self.service} failed with status {response.status_code}: "
                f"{_error_message(response)}"
            )
        if response.status_code >= 400:
            raise BackendRejected(
                f"{self.service}: {_error_message(response)}",
                status=response.status_code,
                code=_error_code(response),
            )
        return response

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


class CatalogClient(ServiceClient):
    """The catalog service: image metadata and originals."""

    service = "catalog"

    async def list_images(self, params: list[tuple[str, str]]) -> ImagePage:
        """Query images by the catalog's filters, sort and cursor."""
        response = await self.request("GET", "/v1/images", params=params)
        return ImagePage.model_validate(response.json())

    async def image_request(self, method: str, image_id: str, suffix: str = "") -> httpx.Response:
        """Send a request about one image; ImageNotFound when the catalog has no such image."""
        try:
            return await self.request(method, image_path(image_id) + suffix)
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
        response = await self.image_request("GET", image_id, "/content")
        media_type = response.headers.get("content-type", "application/octet-stream")
        return Original(response.content, media_type)


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
        )
        return Rendered(
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            width=int(response.headers.get("x-image-width", 0)),
            height=int(response.headers.get("x-image-height", 0)),
            pipeline=response.headers.get("x-pipeline", ops),
        )


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
