"""Turn whatever name a client sends into a safe, displayable file name."""

import re

from catalog.models import CONTROL_CHARACTERS, ImageFormat

_EDGES = re.compile(r"^[\s.]+|[\s.]+$")
_EXTENSIONS: dict[ImageFormat, str] = {"jpeg": "jpg", "tiff": "tif"}


def clean_name(raw: str | None, *, image_id: str, format: ImageFormat, max_length: int) -> str:
    """Keep the last path component, drop control characters and edge dots/spaces, cap length."""
    name = re.split(r"[/\\]", raw or "")[-1]
    name = _EDGES.sub("", CONTROL_CHARACTERS.sub("", name))
    name = _EDGES.sub("", name[:max_length])
    return name or f"{image_id}.{_EXTENSIONS.get(format, format)}"
