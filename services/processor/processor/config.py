"""Processor settings, read from the environment with the ``PROCESSOR_`` prefix."""

import os
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Comma-separated in the environment ("k1, k2"); SecretStr keeps them out of reprs and logs.
Keys = Annotated[tuple[SecretStr, ...], NoDecode]


class Settings(BaseSettings):
    """Limits and defaults of the processor service."""

    model_config = SettingsConfigDict(env_prefix="PROCESSOR_")

    max_body_bytes: int = Field(default=50_000_000, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)
    # One job more than cores: a finished job's core starts the next at once
    # instead of waiting for the event loop to hand it over.
    max_jobs: int = Field(default_factory=lambda: (os.cpu_count() or 2) + 1, ge=1)
    # Threads per OpenCV call; parallelism comes from running jobs side by side.
    opencv_threads: int = Field(default=1, ge=1)
    queue_timeout_s: float = Field(default=5.0, ge=0)
    # A small lane of its own for cheap jobs that shrink the image (thumbnails), so
    # they never queue behind full-size renders; 0 turns it off.
    express_jobs: int = Field(default=2, ge=0)
    # Largest estimated cost of an express job (pixels decoded, read, written and
    # encoded; see jobs.py): admits thumbnails of JPEGs up to about 27 megapixels,
    # some 45 ms of one core.
    express_max_cost: int = Field(default=10_000_000, ge=0)
    # How far below normal priority the heavy lane's threads run (0-19; 0 keeps them equal).
    heavy_job_nice: int = Field(default=19, ge=0, le=19)
    # Above this resident memory, freed memory is given back to the system after each
    # job (see allocator.py); 0 never gives it back.
    memory_soft_limit_mb: int = Field(default=1024, ge=0)
    default_quality: int = Field(default=90, ge=1, le=100)
    max_steps: int = Field(default=20, ge=1)
    # Bearer keys for /v1/process, /v1/info and /v1/pipeline; none: those routes are open.
    api_keys: Keys = ()
    # Secrets of signed render URLs (signing.py): the first signs, every one verifies.
    signing_keys: Keys = ()
    # The furthest ahead a signed URL's expires may be, so a leaked link dies on its own.
    signature_max_age_s: int = Field(default=86_400, ge=1)
    # LOG_FORMAT, shared by every service: "json" writes one JSON object per log line.
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias=AliasChoices("log_format", "LOG_FORMAT")
    )

    @field_validator("api_keys", "signing_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Read ``"a, b"`` as two keys, each trimmed; empty items (or an empty string) are none."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        trimmed = (item.strip() if isinstance(item, str) else item for item in items)
        return tuple(item for item in trimmed if item)


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
