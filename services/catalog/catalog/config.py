"""Catalog settings, read from CATALOG_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from catalog.models import DEFAULT_DUPLICATE_DISTANCE, MAX_NAME_LENGTH, MAX_SIMILAR_DISTANCE

# Comma-separated in the environment ("k1, k2"); SecretStr keeps them out of reprs and logs.
Keys = Annotated[tuple[SecretStr, ...], NoDecode]


class Settings(BaseSettings):
    """Where the catalog keeps its data and the limits it enforces."""

    # hide_input_in_errors: a bad setting's error must not print the keys beside it.
    model_config = SettingsConfigDict(env_prefix="CATALOG_", hide_input_in_errors=True)

    store: str = Field(
        "sqlite:///data/catalog.db",
        description="Store URL: sqlite:///relative/or//absolute/path.db or mongodb://host/db.",
    )
    blobs: Path = Field(Path("data/blobs"), description="Folder of content-addressed originals.")
    max_body_bytes: int = Field(50_000_000, ge=1, description="Largest accepted upload.")
    max_pixels: int = Field(50_000_000, ge=1, description="Largest accepted width * height.")
    max_name_length: int = Field(
        255, ge=1, le=MAX_NAME_LENGTH, description="Longest stored file name."
    )
    api_keys: Keys = Field(
        (), description="Bearer keys for uploads and deletes; none: writes are open."
    )
    read_keys: Keys = Field(
        (), description="Bearer keys for reads (a write key also reads); none: reads are open."
    )
    orphan_grace_s: float = Field(
        600.0,
        ge=0,
        description="Age below which an unreferenced original is kept: an upload may be "
        "about to reference it.",
    )
    keep_gps: bool = Field(
        False,
        description="Keep photos' GPS coordinates; off: only whether a photo has them is kept.",
    )
    sweep_interval_s: float = Field(
        600.0,
        ge=0,
        description="Seconds between sweeps of unreferenced originals (the first at start); "
        "0 turns sweeping off.",
    )
    duplicate_distance: int = Field(
        DEFAULT_DUPLICATE_DISTANCE,
        ge=0,
        le=MAX_SIMILAR_DISTANCE,
        description="Largest pHash Hamming distance at which two images are duplicates "
        "(single-link groups, kept up to date as images are added and deleted).",
    )

    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias=AliasChoices("log_format", "LOG_FORMAT"),
        description="LOG_FORMAT (no prefix, shared by every service): text, or json for one "
        "JSON object per log line.",
    )

    @field_validator("api_keys", "read_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Read ``"a, b"`` as two keys, each trimmed; empty items (and "") are no key."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        trimmed = (item.strip() if isinstance(item, str) else item for item in items)
        return tuple(item for item in trimmed if item)

    @model_validator(mode="after")
    def _reads_locked_only_with_writes(self) -> Self:
        """Refuse read keys without write keys: reads would be guarded while writes were open."""
        if self.read_keys and not self.api_keys:
            raise ValueError(
                "CATALOG_READ_KEYS is set but CATALOG_API_KEYS is not: "
                "set write keys too, or writes stay open to anyone"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
