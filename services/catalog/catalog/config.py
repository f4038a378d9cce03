"""Catalog settings, read from CATALOG_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalog.models import MAX_NAME_LENGTH


class Settings(BaseSettings):
    """Where the catalog keeps its data and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_")

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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
