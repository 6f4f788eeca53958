"""ServeSettings: everything `amms serve` decides, built once by the CLI and passed down to the front
end and the model server. Each default is written here only (the CLI's options read them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SETTINGS_ENV = "AMMS_SERVE_SETTINGS"  # how --workers N hands the settings to each worker process


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config_path: Path
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    watch: bool = False
    poll_s: float | None = Field(None, gt=0, description="poll the repository every N seconds instead of events")
    debounce_ms: int = Field(200, ge=0)
    body_limit_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    drain_timeout_s: float = Field(30.0, ge=0)
    predict_threads: int = Field(4, ge=1, le=256)
    request_timeout_s: float = Field(
        30.0, gt=0, description="time allowed to receive a whole request, and to wait for its model to load"
    )
    # the model cache (serving/model_cache.py): either limit makes models load on their first request
    max_loaded_models: int | None = Field(None, ge=1, description="most model versions in memory at once")
    memory_budget_bytes: int | None = Field(None, ge=1, description="most memory the loaded versions may hold")
    allowed_loaders: frozenset[str] | None = Field(None, description="refuse versions with other loaders")
    admin_token: str | None = None
    log_level: str = "info"
    access_log: bool = False

    @classmethod
    def default(cls, field: str) -> Any:
        """A field's default, for the command line's options."""
        return cls.model_fields[field].default

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls.model_validate_json(os.environ[SETTINGS_ENV])

    @property
    def watching(self) -> bool:
        return self.watch or self.poll_s is not None

    @property
    def on_demand(self) -> bool:
        """Models load on their first request and the least recently used idle ones are evicted."""
        return self.max_loaded_models is not None or self.memory_budget_bytes is not None
