"""The amms.json config: a JSON list of model entries, validated with pydantic.

Every problem becomes one `ConfigError` line naming the file, the entry and the field, e.g.
`amms.json: entry 2 (model 'simple_text'): aspired_version '1.y' is not a version pattern (...)`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from amms_cli.errors import ConfigError, VersionSyntaxError
from amms_cli.repository import atomic_files
from amms_cli.repository.sources import SOURCE_TYPES, ModelSource, open_source
from amms_cli.repository.versions import Version, VersionPattern
from amms_cli.servables import SERVABLE_NAMES

DEFAULT_CONFIG_NAME = "amms.json"
DEFAULT_BATCH_SIZE = 32  # max_batch_size when the entry leaves it out and the model's rows are independent
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
NAME_HELP = "use lowercase letters, digits, '_', '.', '-', starting with a letter or digit"
JSON_HINT = "fix the JSON there (strings in double quotes; no trailing commas or comments)"
ENTRY_HINT = 'fix that entry; README.md "Config reference" lists every key'


def check_model_name(name: str) -> str:
    if not NAME_RE.match(name) or ".." in name:
        raise ValueError(f"model_name {name!r} is not a valid name ({NAME_HELP})")
    return name


class ModelEntry(BaseModel):
    """One served model. Only `model_name` is required; see README "Config reference"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str = Field(description="Folder name under load_url and the name in every API route.")
    aspired_version: str = Field(
        "latest", description="Which version to serve: 'latest', '1.x', '1.2.x' or an exact '1.2.3'."
    )
    load_type: str = Field("SHARE", description="Where versions live. SHARE: a local or mounted folder.")
    load_url: str = Field("models", description="The folder for SHARE; relative to the config file.")
    servable_name: str | None = Field(
        None, description="Input adapter: text_input, tabular, ndarray or custom. Default: the manifest's."
    )
    pinned_versions: list[str] = Field(
        default_factory=list, description="Exact versions kept loaded (and routable) beside the served one."
    )
    # strict: JSON true must not pass as 1
    max_batch_size: int | None = Field(
        None,
        ge=1,
        le=4096,
        strict=True,
        description="Adaptive batching: most rows per model call; 1 turns batching off. Default: "
        f"{DEFAULT_BATCH_SIZE} for models whose rows are predicted independently (scikit-learn, the tree "
        "libraries, ONNX with a batch dimension, batchable custom models), else off.",
    )
    max_wait_ms: float = Field(
        50.0,
        ge=0,
        le=10_000,
        strict=True,
        description="Adaptive batching: how long queued requests wait for a busy model before a second batch "
        "runs beside the first.",
    )
    load_timeout_s: float = Field(
        120.0, gt=0, le=3600, strict=True, description="A version that takes longer to load is marked FAILED."
    )
    keep_loaded: bool = Field(
        False,
        strict=True,
        description="With --max-loaded-models or --memory-budget: load at start and never evict (the hot "
        "set; readiness waits for it). Without them every model is loaded at start anyway.",
    )

    @field_validator("model_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_model_name(value)

    @field_validator("aspired_version")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        try:
            VersionPattern.parse(value)
        except VersionSyntaxError as exc:
            raise ValueError(f"aspired_version {exc.message}") from None
        return value

    @field_validator("load_type")
    @classmethod
    def _known_load_type(cls, value: str) -> str:
        if value not in SOURCE_TYPES:
            known = ", ".join(sorted(SOURCE_TYPES))
            raise ValueError(f"load_type {value!r} is not supported (known: {known})")
        return value

    @field_validator("servable_name")
    @classmethod
    def _known_servable(cls, value: str | None) -> str | None:
        if value is not None and value not in SERVABLE_NAMES:
            raise ValueError(f"servable_name {value!r} is not a servable (known: {', '.join(SERVABLE_NAMES)})")
        return value

    @field_validator("pinned_versions")
    @classmethod
    def _exact_versions(cls, value: list[str]) -> list[str]:
        for text in value:
            if not Version.is_valid(text):
                raise ValueError(f"pinned_versions {text!r} is not an exact version like 1.2.3")
        return value

    @model_validator(mode="after")
    def _usable_url(self) -> ModelEntry:
        if not self.load_url.strip():
            raise ValueError("load_url must not be empty")
        if "\0" in self.load_url:
            raise ValueError("load_url must not contain a NUL character")
        return self

    @property
    def pattern(self) -> VersionPattern:
        return VersionPattern.parse(self.aspired_version)

    def source(self, base_dir: Path) -> ModelSource:
        return open_source(self.load_type, self.load_url, base_dir)

    def model_dir(self, base_dir: Path) -> Path:
        return self.source(base_dir).model_dir(self.model_name)


@dataclass(frozen=True)
class AmmsConfig:
    """A validated config file: its path (relative URLs resolve against its folder) and entries."""

    path: Path
    models: tuple[ModelEntry, ...] = field(default_factory=tuple)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def entry(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.model_name == name), None)

    def model_dir(self, entry: ModelEntry) -> Path:
        return entry.model_dir(self.base_dir)

    def with_models(self, models: list[ModelEntry]) -> AmmsConfig:
        return AmmsConfig(self.path, tuple(models))


def load_config(path: Path) -> AmmsConfig:
    path = path.absolute()
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file", hint="run `amms init` here, or pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse_config(text, path, label)


def parse_config(text: str, path: Path, label: str | None = None) -> AmmsConfig:
    label = label or path.name
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(f"{label}: invalid JSON at {where}: {exc.msg}", hint=JSON_HINT) from None
    except RecursionError:
        raise ConfigError(f"{label}: invalid JSON: nested too deeply", hint=JSON_HINT) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise ConfigError(f"{label}: invalid JSON: {exc}", hint=JSON_HINT) from None
    if not isinstance(raw, list):
        raise ConfigError(
            f"{label}: expected a JSON list of model entries, got {_json_kind(raw)}",
            hint='wrap the entries in [...]; an empty config is "[]"',
        )
    models = [_parse_entry(item, number, label) for number, item in enumerate(raw, start=1)]
    _check_unique_names(models, label)
    return AmmsConfig(path.absolute(), tuple(models))


def _parse_entry(item: Any, number: int, label: str) -> ModelEntry:
    where = f"{label}: entry {number}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object with model_name, got {_json_kind(item)}", hint=ENTRY_HINT)
    if isinstance(item.get("model_name"), str):
        where += f" (model {item['model_name']!r})"
    try:
        return ModelEntry.model_validate(item)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_describe(exc)}", hint=ENTRY_HINT) from None


def new_entry(**fields: Any) -> ModelEntry:
    """An entry from command-line values; a bad value becomes one ConfigError line naming the field."""
    try:
        return ModelEntry.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """The first validation problem as one phrase that names the field."""
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc, ModelEntry.model_fields, n=1)
        suggestion = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key {loc!r}{suggestion} (known keys: {', '.join(ModelEntry.model_fields)})"
    if error["type"] == "missing":
        return f"missing required key '{loc}'"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return f"{loc}: {error['msg']} (got {_shorten(repr(error['input']))})"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_unique_names(models: list[ModelEntry], label: str) -> None:
    seen: set[str] = set()
    for number, entry in enumerate(models, start=1):
        if entry.model_name in seen:
            raise ConfigError(
                f"{label}: entry {number} (model {entry.model_name!r}): model_name is used twice",
                hint="give every entry its own model_name",
            )
        seen.add(entry.model_name)


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def render_config(models: list[ModelEntry] | tuple[ModelEntry, ...]) -> str:
    """The JSON text of a config; fields left at their defaults are omitted except the seed's five."""
    seed = {"model_name", "aspired_version", "load_type", "load_url", "servable_name"}
    entries = []
    for entry in models:
        data = entry.model_dump(exclude_defaults=True)
        full = entry.model_dump()
        entries.append({key: full[key] for key in ModelEntry.model_fields if key in seed or key in data})
    return json.dumps(entries, indent=2) + "\n"


def save_config(config: AmmsConfig) -> None:
    atomic_files.atomic_write_text(config.path, render_config(config.models))


def update_config(path: Path, change: Callable[[AmmsConfig], list[ModelEntry]]) -> AmmsConfig:
    """Re-read the config, change its entries and save it, all under a lock: two commands running at
    once (parallel add-models in a CI job) must not drop each other's entries."""
    path = path.absolute()
    try:
        with atomic_files.file_lock(path.with_name(f".{path.name}.lock")):
            config = load_config(path)
            updated = config.with_models(change(config))
            save_config(updated)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write the config: {exc.strerror or exc}; it is unchanged",
            hint="check free disk space and write permission on its folder",
        ) from None
    return updated
