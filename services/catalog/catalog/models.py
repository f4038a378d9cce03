"""Catalog data shapes: header metadata, records, queries, pages and stats."""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

ImageFormat = Literal["jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic"]
Orientation = Literal["landscape", "portrait", "square"]
SortField = Literal["width", "height", "pixels", "created", "name"]
SortKey = Literal[
    "width", "-width", "height", "-height", "pixels", "-pixels",
    "created", "-created", "name", "-name",
]  # fmt: skip

FORMATS: tuple[ImageFormat, ...] = get_args(ImageFormat)
ORIENTATIONS: tuple[Orientation, ...] = get_args(Orientation)
SORT_KEYS: tuple[SortKey, ...] = get_args(SortKey)

ID_LENGTH = 20
ID_PATTERN = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")
MAX_FILTER = 10**9
# SQLite's INTEGER and BSON's int64: the largest count either store can hold.
MAX_COUNT = 2**63 - 1
# The longest name a record holds; Settings.max_name_length may only be shorter.
MAX_NAME_LENGTH = 1000
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A count stops here by default, so a page over a million images stays fast (exact: false).
DEFAULT_COUNT_LIMIT = 10_000
MAX_COUNT_LIMIT = 100_000

Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
ImageName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]


def image_id(sha256: str) -> str:
    """The id of the image with this content: the same bytes get the same id everywhere."""
    return sha256[:ID_LENGTH]


def is_image_id(value: str) -> bool:
    """Whether the string has the shape of an image id."""
    return ID_PATTERN.fullmatch(value) is not None


def orientation_of(width: int, height: int) -> Orientation:
    """Landscape, portrait or square, as the photo is seen."""
    if width > height:
        return "landscape"
    if width < height:
        return "portrait"
    return "square"


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """What the header of an upload says, with width and height as a person sees the photo."""

    sha256: str
    format: ImageFormat
    mode: str
    width: int
    height: int
    exif_orientation: int
    bytes: int


class ImagePublic(BaseModel):
    """An image as the API returns it."""

    id: str
    name: ImageName
    sha256: str
    format: ImageFormat
    mode: str
    width: Count
    height: Count
    pixels: Count
    aspect: float
    orientation: Orientation
    bytes: int
    exif_orientation: int
    created: datetime


class ImageRecord(ImagePublic):
    """An image as a store keeps it; store-only fields belong here, not in ImagePublic."""

    @classmethod
    def from_meta(cls, meta: ImageMeta, *, name: str, created: datetime | None = None) -> Self:
        """Build the record of a new image, deriving pixels, aspect and orientation."""
        return cls(
            id=image_id(meta.sha256),
            name=name,
            sha256=meta.sha256,
            format=meta.format,
            mode=meta.mode,
            width=meta.width,
            height=meta.height,
            pixels=meta.width * meta.height,
            aspect=round(meta.width / meta.height, 4),
            orientation=orientation_of(meta.width, meta.height),
            bytes=meta.bytes,
            exif_orientation=meta.exif_orientation,
            created=to_millis(created or datetime.now(UTC)),
        )


def to_millis(moment: datetime) -> datetime:
    """The moment truncated to whole milliseconds, the precision every store keeps (BSON dates)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """Where a page ended: the last item's sort value and id."""

    value: int | str | datetime
    id: str


def encode_cursor(sort: SortKey, record: ImagePublic) -> str:
    """An opaque, url-safe cursor that resumes after this record in this sort."""
    return _encode(sort, getattr(record, sort.lstrip("-")), record.id)


def decode_cursor(cursor: str, sort: SortKey) -> CursorPosition:
    """Read a cursor made by encode_cursor for the same sort; ValueError for any other text."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode())
    # RecursionError: a few kilobytes of "[" nest deeper than the parser goes.
    except (ValueError, binascii.Error, RecursionError):
        raise ValueError("not a valid cursor") from None
    if not isinstance(payload, list) or len(payload) != 3:
        raise ValueError("not a valid cursor")
    cursor_sort, value, item_id = payload
    if cursor_sort not in SORT_KEYS or not isinstance(item_id, str) or not is_image_id(item_id):
        raise ValueError("not a valid cursor")
    position = CursorPosition(_cursor_value(cursor_sort.lstrip("-"), value), item_id)
    # Only the catalog's own spelling names a position: other base64 of the same bytes,
    # padding, spaces or escapes in the JSON are text the catalog never handed out.
    if _encode(cursor_sort, position.value, position.id) != cursor:
        raise ValueError("not a valid cursor")
    if cursor_sort != sort:
        raise ValueError(f"the cursor belongs to sort={cursor_sort}, not sort={sort}")
    return position


def _encode(sort: str, value: int | str | datetime, item_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, item_id], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# A cursor's value must be one a record can hold: the record's own field types, strictly
# (no bool for an int, no float, nothing a store cannot bind, no lone surrogate).
_RECORD_VALUES: dict[str, TypeAdapter[Any]] = {
    "width": TypeAdapter(Count),
    "height": TypeAdapter(Count),
    "pixels": TypeAdapter(Count),
    "name": TypeAdapter(ImageName),
}


def _cursor_value(field: str, value: object) -> int | str | datetime:
    if field == "created":
        return _cursor_created(value)
    try:
        checked: int | str = _RECORD_VALUES[field].validate_python(value, strict=True)
    except ValidationError:
        raise ValueError("not a valid cursor") from None
    return checked


def _cursor_created(value: object) -> datetime:
    """A creation time as records keep it: ISO 8601, in UTC, to the millisecond."""
    if not isinstance(value, str):
        raise ValueError("not a valid cursor")
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not a valid cursor") from None
    if created.utcoffset() != timedelta(0) or created != to_millis(created):
        raise ValueError("not a valid cursor")
    return created


_RANGES = (
    ("min_width", "max_width"),
    ("min_height", "max_height"),
    ("min_pixels", "max_pixels"),
)


class ImageFilters(BaseModel):
    """Which images a query matches: dimension ranges, formats, orientation, name."""

    model_config = ConfigDict(extra="forbid")

    min_width: int | None = Field(None, ge=1, le=MAX_FILTER)
    max_width: int | None = Field(None, ge=1, le=MAX_FILTER)
    min_height: int | None = Field(None, ge=1, le=MAX_FILTER)
    max_height: int | None = Field(None, ge=1, le=MAX_FILTER)
    min_pixels: int | None = Field(None, ge=1, le=MAX_FILTER)
    max_pixels: int | None = Field(None, ge=1, le=MAX_FILTER)
    format: list[ImageFormat] = Field(default_factory=list, description="Any of these formats.")
    orientation: Orientation | None = None
    name: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Case-insensitive substring of the name.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_printable(cls, name: str | None) -> str | None:
        # Stored names never hold control characters (names.clean_name drops them), and
        # MongoDB cannot carry a NUL in a pattern: refuse rather than match nothing.
        if name is not None and CONTROL_CHARACTERS.search(name):
            raise ValueError("must not contain control characters")
        return name

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> Self:
        for low, high in _RANGES:
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                raise ValueError(f"{low} must not exceed {high}")
        return self

    def bounds(self) -> dict[str, tuple[int | None, int | None]]:
        """The (min, max) of width, height and pixels, each tightened by pixels = width * height.

        The result set is the same; the implied bounds let a store walk an index over a
        range instead of skipping every row the explicit filters would reject.
        """
        w_lo, w_hi = self.min_width, self.max_width
        h_lo, h_hi = self.min_height, self.max_height
        p_lo, p_hi = self.min_pixels, self.max_pixels
        return {
            "width": (_higher(w_lo, _ceil_div(p_lo, h_hi)), _lower(w_hi, _floor_div(p_hi, h_lo))),
            "height": (_higher(h_lo, _ceil_div(p_lo, w_hi)), _lower(h_hi, _floor_div(p_hi, w_lo))),
            "pixels": (_higher(p_lo, _product(w_lo, h_lo)), _lower(p_hi, _product(w_hi, h_hi))),
        }


class ImageQuery(ImageFilters):
    """Filters, sort order and keyset position of one page of images."""

    sort: SortKey = Field("-created", description="Sort field, '-' prefix for descending.")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, description="next_cursor of the previous page.")

    @field_validator("cursor")
    @classmethod
    def _cursor_matches_sort(cls, cursor: str | None, info: ValidationInfo) -> str | None:
        sort = info.data.get("sort")
        if cursor is not None and sort is not None:
            decode_cursor(cursor, sort)
        return cursor

    @property
    def sort_field(self) -> SortField:
        """The field sorted on, without the direction."""
        field = self.sort.lstrip("-")
        assert field in get_args(SortField)
        return field  # type: ignore[return-value]

    @property
    def descending(self) -> bool:
        """Whether the sort runs from the largest value down."""
        return self.sort.startswith("-")

    def after(self) -> CursorPosition | None:
        """The position this page starts after, decoded from the cursor."""
        return None if self.cursor is None else decode_cursor(self.cursor, self.sort)


def _ceil_div(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else -(-a // b)


def _floor_div(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a // b


def _product(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def _higher(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


class CountQuery(ImageFilters):
    """Filters of a count, and how far to count before giving up on an exact answer."""

    limit: int = Field(
        DEFAULT_COUNT_LIMIT,
        ge=1,
        le=MAX_COUNT_LIMIT,
        description="Count at most this many; beyond it the count is this and exact is false.",
    )


class ImageCount(BaseModel):
    """How many images match: exact, or the query's limit when more match (exact false)."""

    count: int
    exact: bool

    @classmethod
    def capped(cls, found: int, limit: int) -> Self:
        """The answer for ``found`` matches, counted up to ``limit + 1``."""
        return cls(count=min(found, limit), exact=found <= limit)


class ImagePage(BaseModel):
    """One page of query results; next_cursor is null on the last page."""

    items: list[ImagePublic]
    next_cursor: str | None = None


class CatalogStats(BaseModel):
    """Counts and dimension ranges over the whole catalog."""

    count: int
    formats: dict[ImageFormat, int]
    orientations: dict[Orientation, int]
    min_width: int | None
    max_width: int | None
    min_height: int | None
    max_height: int | None
