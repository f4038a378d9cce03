"""Catalog data shapes: header metadata, records, queries, pages and stats."""

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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
SortField = Literal["width", "height", "pixels", "created", "name", "taken"]
SortKey = Literal[
    "width", "-width", "height", "-height", "pixels", "-pixels",
    "created", "-created", "name", "-name", "taken", "-taken",
]  # fmt: skip
# 12 hues 30 degrees apart from red at 0, then the low-chroma classes by lightness.
ColourClass = Literal[
    "red", "orange", "yellow", "lime", "green", "spring", "cyan", "azure", "blue", "violet",
    "magenta", "rose", "grey", "black", "white",
]  # fmt: skip

FORMATS: tuple[ImageFormat, ...] = get_args(ImageFormat)
ORIENTATIONS: tuple[Orientation, ...] = get_args(Orientation)
SORT_KEYS: tuple[SortKey, ...] = get_args(SortKey)
COLOUR_CLASSES: tuple[ColourClass, ...] = get_args(ColourClass)
# The wall-clock time a photo was taken, as stored for filters and sorting.
TAKEN_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
MAX_CAMERA_LENGTH = 200
MAX_CAMERAS = 200

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


class Location(BaseModel):
    """Where a photo was taken, in decimal degrees (WGS 84, as EXIF GPS gives it)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


@dataclass(frozen=True, slots=True)
class PhotoMeta:
    """What EXIF and the reduced decode say about a photo; None where unknown."""

    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    has_location: bool = False
    location: Location | None = None
    dominant_colour: str | None = None
    colour: ColourClass | None = None
    phash: str | None = None

    @property
    def camera(self) -> str | None:
        """Make and model as one name, without repeating the make the model starts with."""
        return camera_name(self.camera_make, self.camera_model)

    def fields(self) -> dict[str, Any]:
        """The record fields these values fill (camera derived, location as a model)."""
        return {
            "taken_at": self.taken_at,
            "camera_make": self.camera_make,
            "camera_model": self.camera_model,
            "camera": self.camera,
            "lens": self.lens,
            "has_location": self.has_location,
            "location": self.location,
            "dominant_colour": self.dominant_colour,
            "colour": self.colour,
            "phash": self.phash,
        }


def camera_name(make: str | None, model: str | None) -> str | None:
    """The camera's display name: "Canon EOS 5D Mark IV", "Apple iPhone 12 Pro"."""
    if not model:
        return make or None
    if not make:
        return model
    # "NIKON CORPORATION" + "NIKON D750": the model already names the maker.
    first = make.split()[0].casefold()
    if model.casefold().startswith(first):
        return model[:MAX_CAMERA_LENGTH]
    return f"{make} {model}"[:MAX_CAMERA_LENGTH]


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
    photo: PhotoMeta | None = None


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
    taken_at: str | None = Field(
        None, description="When taken, local wall-clock time, with the UTC offset when known."
    )
    camera_make: str | None = None
    camera_model: str | None = None
    camera: str | None = Field(None, description="Make and model, the camera filter's value.")
    lens: str | None = None
    has_location: bool | None = Field(None, description="Whether EXIF GPS gives a position.")
    location: Location | None = Field(None, description="Kept only with CATALOG_KEEP_GPS.")
    dominant_colour: str | None = Field(None, description="#rrggbb")
    colour: ColourClass | None = None
    phash: str | None = Field(None, description="64-bit perceptual hash, 16 hex digits.")

    @property
    def taken(self) -> str | None:
        """The wall-clock part of taken_at, YYYY-MM-DDTHH:MM:SS: what sort=taken orders by."""
        return None if self.taken_at is None else self.taken_at[:19]


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
            **(meta.photo.fields() if meta.photo is not None else {}),
        )


def to_millis(moment: datetime) -> datetime:
    """The moment truncated to whole milliseconds, the precision every store keeps (BSON dates)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """Where a page ended: the last item's sort value and id."""

    value: int | str | datetime | None
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


def _encode(sort: str, value: int | str | datetime | None, item_id: str) -> str:
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


def _cursor_value(field: str, value: object) -> int | str | datetime | None:
    if field == "created":
        return _cursor_created(value)
    if field == "taken":
        # None: the page ended among the undated images, which follow every dated one.
        if value is None or (isinstance(value, str) and _is_taken(value)):
            return value
        raise ValueError("not a valid cursor")
    try:
        checked: int | str = _RECORD_VALUES[field].validate_python(value, strict=True)
    except ValidationError:
        raise ValueError("not a valid cursor") from None
    return checked


def _is_taken(value: str) -> bool:
    """Whether the text is a wall-clock time as records keep it: YYYY-MM-DDTHH:MM:SS."""
    if TAKEN_PATTERN.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


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
    taken_after: str | None = Field(
        None, description="Taken at or after: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (wall clock)."
    )
    taken_before: str | None = Field(
        None, description="Taken at or before: YYYY-MM-DD (the whole day) or YYYY-MM-DDTHH:MM:SS."
    )
    camera: str | None = Field(
        None, min_length=1, max_length=MAX_CAMERA_LENGTH, description="Camera name, exactly."
    )
    colour: ColourClass | None = Field(None, description="Coarse colour class.")
    has_location: bool | None = Field(None, description="Whether the photo has a GPS position.")

    @field_validator("taken_after", "taken_before")
    @classmethod
    def _taken_is_a_time(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Read a date or a date and time as the wall-clock bound it stands for."""
        if value is None:
            return None
        try:
            if len(value) == len("YYYY-MM-DD"):
                day = date.fromisoformat(value)
                moment = datetime.combine(
                    day, time.max if info.field_name == "taken_before" else time.min
                )
            elif TAKEN_PATTERN.fullmatch(value):
                moment = datetime.fromisoformat(value)
            else:
                raise ValueError
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM:SS") from None
        return moment.strftime("%Y-%m-%dT%H:%M:%S")

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
        if self.taken_after and self.taken_before and self.taken_after > self.taken_before:
            raise ValueError("taken_after must not be later than taken_before")
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

    @property
    def undated_follow(self) -> bool:
        """Whether undated images may follow this page's dated ones (sort=taken, no date filter)."""
        after = self.after()
        return (
            self.sort_field == "taken"
            and self.taken_after is None
            and self.taken_before is None
            and (after is None or after.value is not None)
        )


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


class CameraCount(BaseModel):
    """One camera and how many images it took."""

    camera: str
    count: int


class CameraList(BaseModel):
    """The cameras of the catalog, most used first."""

    items: list[CameraCount]


class CatalogStats(BaseModel):
    """Counts and dimension ranges over the whole catalog."""

    count: int
    formats: dict[ImageFormat, int]
    orientations: dict[Orientation, int]
    min_width: int | None
    max_width: int | None
    min_height: int | None
    max_height: int | None


# Near-duplicates: pHashes within a Hamming distance (catalog/fingerprint.py).
MAX_SIMILAR_DISTANCE = 12
DEFAULT_DUPLICATE_DISTANCE = 6
_GROUP_CURSOR = "duplicates"


class SimilarQuery(BaseModel):
    """How far to look for images like one image, and how many to return."""

    model_config = ConfigDict(extra="forbid")

    max_distance: int = Field(
        8, ge=0, le=MAX_SIMILAR_DISTANCE, description="Largest Hamming distance of the pHashes."
    )
    limit: int = Field(24, ge=1, le=100)


class SimilarImage(BaseModel):
    """An image and the Hamming distance of its pHash to the one searched from."""

    image: ImagePublic
    distance: int


class SimilarPage(BaseModel):
    """Images like one image, nearest first (then by id)."""

    items: list[SimilarImage]


class DuplicateQuery(BaseModel):
    """One page of duplicate groups."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, description="next_cursor of the previous page.")

    @field_validator("cursor")
    @classmethod
    def _cursor_is_a_group(cls, cursor: str | None) -> str | None:
        if cursor is not None:
            decode_group_cursor(cursor)
        return cursor


class DuplicateGroup(BaseModel):
    """Images whose pHashes chain within the duplicate distance; group is the first one's id."""

    group: str
    images: list[ImagePublic] = Field(description="Largest pixels first, then by id.")


class DuplicatePage(BaseModel):
    """One page of duplicate groups in group order; next_cursor is null on the last page."""

    items: list[DuplicateGroup]
    next_cursor: str | None = None


def duplicate_page(
    members: Mapping[str, Sequence[str]],
    records: Mapping[str, ImageRecord],
    next_group: str | None,
) -> DuplicatePage:
    """Groups of image ids as a page, largest image first; the cursor after ``next_group``."""
    groups = [
        DuplicateGroup(
            group=group,
            images=sorted(
                (records[i] for i in ids if i in records), key=lambda r: (-r.pixels, r.id)
            ),
        )
        for group, ids in members.items()
    ]
    next_cursor = None if next_group is None else encode_group_cursor(next_group)
    return DuplicatePage(items=groups, next_cursor=next_cursor)


def encode_group_cursor(group: str) -> str:
    """An opaque, url-safe cursor that resumes after this duplicate group."""
    raw = json.dumps([_GROUP_CURSOR, group], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_group_cursor(cursor: str) -> str:
    """The group a cursor made by encode_group_cursor resumes after; ValueError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode())
    except (ValueError, binascii.Error, RecursionError):
        raise ValueError("not a valid cursor") from None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or payload[0] != _GROUP_CURSOR
        or not isinstance(payload[1], str)
        or not is_image_id(payload[1])
        or encode_group_cursor(payload[1]) != cursor
    ):
        raise ValueError("not a valid cursor")
    group: str = payload[1]
    return group
