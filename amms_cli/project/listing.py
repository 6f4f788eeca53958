"""`amms list`: every configured model with its versions on disk, checked (checksums included), and
the version a server would serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amms_cli.project.config import AmmsConfig, ModelEntry, load_config
from amms_cli.repository.scan import scan_model, verify_version
from amms_cli.repository.versions import Version


@dataclass(frozen=True)
class VersionRow:
    version: Version
    framework: str | None
    size: int
    problem: str | None
    smoke_check: bool  # it has an example its publisher gave, run at every load


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    folder: Path
    versions: list[VersionRow]
    served: Version | None
    warnings: list[str]


def list_models(config_path: Path) -> list[ModelStatus]:
    config = load_config(config_path)
    return [model_status(config, entry) for entry in config.models]


def model_status(config: AmmsConfig, entry: ModelEntry) -> ModelStatus:
    folder = config.model_dir(entry)
    on_disk = scan_model(folder, entry.model_name)
    rows, failed = [], set()
    for item in on_disk.versions:
        problem = verify_version(item)
        if problem is not None:
            failed.add(item.version)
        size = item.manifest.artifacts_bytes if item.manifest else 0
        framework = item.manifest.framework if item.manifest else None
        checked = item.manifest is not None and item.manifest.input.smoke_example is not None
        rows.append(VersionRow(item.version, framework, size, problem, checked))
    served = on_disk.resolve(entry.pattern, frozenset(failed))
    warnings = list(on_disk.warnings)
    if not folder.is_dir():
        warnings.append(f"{folder} does not exist")
    return ModelStatus(entry, folder, rows, served.version if served else None, warnings)
