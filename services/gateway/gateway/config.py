"""Gateway settings, read from GATEWAY_* environment variables."""

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the backends live and how much the gateway keeps in memory."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    catalog_url: str = "http://127.0.0.1:8001"
    # One or more processors, comma-separated; a name resolving to several addresses (a
    # scaled compose service, a headless Kubernetes Service) counts each one.
    processor_url: str = "http://127.0.0.1:8002"
    # Metadata calls (records, pages, operation lists) answer in milliseconds; a backend
    # that takes longer is hung, and the page says so within this budget (a 504).
    metadata_timeout_s: float = Field(default=3.0, gt=0)
    # Fetching an original and processing it: the budget of one render.
    render_timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # Bearer keys for the backends, when they require them (CATALOG_API_KEYS and
    # PROCESSOR_API_KEYS); empty sends none.
    catalog_key: str = ""
    processor_key: str = ""
    cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    cache_max_items: int = Field(default=512, ge=0)
    # Originals fetched for renders, by sha256; 0 bytes turns the cache off.
    originals_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    originals_max_items: int = Field(default=128, ge=0)
    operations_ttl_s: float = Field(default=30.0, ge=0)
    pipeline_cache_items: int = Field(default=4096, ge=1)
    # The most one request holds of an original or a result; larger ones are refused (413).
    max_image_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Renders in flight at once; each holds an original and a result in memory.
    max_renders: int = Field(default=8, ge=1)
    thumb_size: int = Field(default=320, ge=16, le=2048)
    page_size: int = Field(default=24, ge=1, le=200)
    retry_after_s: int = Field(default=5, ge=1)
    # LOG_FORMAT, shared by every service: "json" writes one JSON object per log line.
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias=AliasChoices("log_format", "LOG_FORMAT")
    )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (tests override this dependency)."""
    return Settings()
