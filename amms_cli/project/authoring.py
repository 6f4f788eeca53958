"""The authoring commands as library functions: init, add-model, bump-version, list.

They return data and raise AmmsError; printing is the CLI's job.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amms_cli.errors import ChecksumMismatch, ConfigError, ModelExists, ModelLoadError, NotFound, RepositoryError
from amms_cli.loaders import LOADERS, detect_format
from amms_cli.loaders.footprint import format_bytes
from amms_cli.project.config import (
    NAME_HELP,
    AmmsConfig,
    ModelEntry,
    check_model_name,
    load_config,
    new_entry,
    render_config,
    update_config,
)
from amms_cli.project.input_facts import TABLE_SUFFIXES
from amms_cli.project.trial_load import TrialRequest, trial_load
from amms_cli.repository import atomic_files
from amms_cli.repository.manifest import Manifest, describe_artifacts, sha256_file, verify_artifacts
from amms_cli.repository.publish import VersionChoice, publish_version
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model, verify_version
from amms_cli.repository.versions import BumpPart, Version, VersionPattern


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    models_dir: Path


@dataclass(frozen=True)
class PublishResult:
    entry: ModelEntry
    published: VersionOnDisk
    previous: Version | None = None
    not_served_reason: str | None = None  # set when the new version falls outside the aspired pattern
    resumed: bool = False  # an interrupted add-model of the same file had published it; only the entry was added


def init_project(folder: Path, force: bool = False) -> InitResult:
    config_path = folder / "amms.json"
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} already exists", hint="pass --force to replace it with an empty config")
    folder.mkdir(parents=True, exist_ok=True)
    models_dir = folder / "models"
    models_dir.mkdir(exist_ok=True)
    atomic_files.atomic_write_text(config_path, render_config([]))
    return InitResult(config_path, models_dir)


def parse_example(text: str | None) -> Any:
    """`--example` is inline JSON, a JSON file, or a CSV file (returned as its Path: its first rows are
    the example, and its columns' dtypes are recorded as pandas reads them). Text that parses as JSON is
    JSON, whatever files exist."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = exc
    candidate = Path(text).expanduser()
    if _is_file(candidate):
        if candidate.suffix.lower() in TABLE_SUFFIXES:
            return candidate
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--example {candidate} is not a JSON file (or a .csv data file): {exc}") from None
    raise ConfigError(f"--example is neither a JSON file nor valid JSON: {error.msg} at column {error.colno}")


def _is_file(path: Path) -> bool:
    """Whether `path` names a file; text no file system accepts as a name (too long) names none."""
    try:
        return path.is_file()
    except OSError:
        return False


def add_model(
    config_path: Path,
    source: Path,
    *,
    name: str,
    version: str = "1.0.0",
    servable: str | None = None,
    aspired: str | None = None,
    example: Any = None,
    fmt: str | None = None,
    trust: list[str] | None = None,
    memory_budget: int | None = None,
) -> PublishResult:
    """Publish `source` as the first version of a new model and add its config entry. With
    `memory_budget` (the servers' --memory-budget), a model that takes more memory once loaded is
    refused before anything is published."""
    config = load_config(config_path)
    _check_new_name(config, name)
    parsed_version = Version.parse(version)
    entry = new_entry(model_name=name, aspired_version=aspired or f"{parsed_version.major}.x", servable_name=servable)
    folder = config.model_dir(entry)
    on_disk = scan_model(folder, name) if folder.exists() else None
    if on_disk is not None and on_disk.versions:
        unfinished = _unfinished_add(on_disk, source, parsed_version)
        if unfinished is None:
            raise ModelExists(
                f"{folder} already holds versions but '{name}' is not in {config.path.name}",
                hint="remove that folder, or choose another --name",
            )
        return _add_entry(config, entry, unfinished, resumed=True)
    if not entry.pattern.matches(parsed_version):
        raise ConfigError(
            f"--aspired {entry.aspired_version} does not match version {version}",
            hint=f"use --aspired {parsed_version.major}.x or latest",
        )
    created = not folder.exists()
    try:
        published = _publish_new(
            folder,
            parsed_version,
            source,
            Trial(name, fmt, servable, example, trust or [], memory_budget),
        )
    except BaseException:
        if created:  # a failed first version leaves no empty model folder behind
            _remove_if_empty(folder)
        raise
    return _add_entry(config, entry, published)


def _add_entry(config: AmmsConfig, entry: ModelEntry, published: VersionOnDisk, resumed: bool = False) -> PublishResult:
    """Append the config entry of a model whose first version is published. The version is published
    first, so a process killed in between leaves a version without an entry, which a retry of the same
    add-model completes (`_unfinished_add`); the reverse order would leave an entry with nothing to serve."""
    manifest = published.manifest
    assert manifest is not None
    entry = entry.model_copy(update={"servable_name": manifest.servable_name})

    def append(current: AmmsConfig) -> list[ModelEntry]:
        _check_new_name(current, entry.model_name)  # the config may have changed while the model was probed
        return [*current.models, entry]

    update_config(config.path, append)
    return PublishResult(entry, published, resumed=resumed)


def _unfinished_add(on_disk: ModelOnDisk, source: Path, version: Version) -> VersionOnDisk | None:
    """The version an interrupted `add-model` of this same source published before it could write the
    config entry: the only version on disk, the one asked for, complete and sound, holding exactly the
    source's files (by checksum). Anything else in the folder is not ours to adopt."""
    if len(on_disk.versions) != 1:
        return None
    only = on_disk.versions[0]
    if only.version != version or only.manifest is None or verify_version(only) is not None:
        return None
    source = source.expanduser()
    if source.is_dir():
        wanted = {(a.name, a.sha256) for a in describe_artifacts(source) if not a.name.startswith(".")}
    elif source.is_file():
        wanted = {(source.name, sha256_file(source))}
    else:
        return None
    return only if {(a.name, a.sha256) for a in only.manifest.artifacts} == wanted else None


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and {child.name for child in folder.iterdir()} <= {atomic_files.LOCK_NAME}:
        (folder / atomic_files.LOCK_NAME).unlink(missing_ok=True)
        folder.rmdir()


def _check_new_name(config: AmmsConfig, name: str) -> None:
    try:
        check_model_name(name)
    except ValueError:
        raise ConfigError(f"'{name}' is not a valid model name", hint=NAME_HELP) from None
    if config.entry(name) is not None:
        raise ModelExists(
            f"model '{name}' already exists in {config.path.name}",
            hint=f"publish a new version with `amms bump-version {name} PATH`",
        )


def bump_version(
    config_path: Path,
    name: str,
    *,
    source: Path | None = None,
    part: BumpPart = "patch",
    aspire: bool = False,
    example: Any = None,
    trust: list[str] | None = None,
    memory_budget: int | None = None,
) -> PublishResult:
    config = load_config(config_path)
    entry = config.entry(name)
    if entry is None:
        raise NotFound(
            f"model '{name}' is not in {config.path.name}",
            hint=f"add it first with `amms add-model PATH --name {name}`",
        )
    folder = config.model_dir(entry)
    on_disk = scan_model(folder, name)

    def next_version(current: ModelOnDisk) -> Version:
        newest = current.newest()
        return newest.version.bump(part) if newest else Version(1, 0, 0)

    if source is None:
        published = _republish(folder, on_disk, next_version)
    else:
        reference = _newest_manifest(on_disk)
        servable = entry.servable_name or (reference.servable_name if reference else None)
        if example is None and reference is not None:
            example = reference.input.smoke_example  # the previous version's, if its publisher gave one
        if trust is None:
            trust = reference.trusted_types if reference is not None else []
        published = _publish_new(
            folder, next_version, source, Trial(name, None, servable, example, trust, memory_budget)
        )
    entry, reason = _maybe_aspire(config, entry, published.version, aspire)
    below = [v.version for v in scan_model(folder, name).versions if v.version < published.version]
    return PublishResult(entry, published, max(below) if below else None, reason)


def _maybe_aspire(
    config: AmmsConfig, entry: ModelEntry, version: Version, aspire: bool
) -> tuple[ModelEntry, str | None]:
    if entry.pattern.matches(version):
        return entry, None
    if not aspire:
        return entry, (
            f"{version} will not be served: '{entry.model_name}' aspires to {entry.aspired_version}"
            f" (pass --aspire to update the entry)"
        )
    updated = entry.model_copy(update={"aspired_version": widen(entry.pattern, version)})
    update_config(
        config.path, lambda current: [updated if m.model_name == entry.model_name else m for m in current.models]
    )
    return updated, None


def widen(pattern: VersionPattern, version: Version) -> str:
    """The pattern of the same kind as `pattern` that selects `version`."""
    if pattern.exact is not None:
        return str(version)
    if pattern.minor is not None:
        return f"{version.major}.{version.minor}.x"
    return f"{version.major}.x"


def _newest_manifest(on_disk: ModelOnDisk) -> Manifest | None:
    sound = [v for v in on_disk.versions if v.ok]
    return sound[-1].manifest if sound else None


@dataclass(frozen=True)
class Trial:
    """How a new version is checked before it is published: its trial load's inputs, and the memory
    budget it must fit in (None: any size)."""

    name: str
    fmt: str | None
    servable: str | None
    example: Any
    trust: list[str]
    memory_budget: int | None = None


def _publish_new(folder: Path, version: VersionChoice, source: Path, check: Trial) -> VersionOnDisk:
    source = source.expanduser()
    if not source.exists():
        raise RepositoryError(f"{source}: no such file or folder", hint="check the model path")
    loader = check.fmt or detect_format(source)
    name, example, trust = check.name, check.example, check.trust

    def fill(staging: Path, version: Version) -> Manifest:
        entrypoint = _copy_artifact(source, staging, loader)
        path = staging / entrypoint if entrypoint != "." else staging
        table = example if isinstance(example, Path) else None
        request = TrialRequest(
            path=path,
            loader=loader,
            name=name,
            servable=check.servable,
            example=None if table else example,
            example_table=table,
            trusted_types=trust,
            measure_memory=check.memory_budget is not None,
        )
        trial = trial_load(request)
        manifest = Manifest(
            model_name=name,
            version=str(version),
            created_at=datetime.now(UTC),
            loader=loader,
            framework=trial.framework,
            model_class=trial.model_class,
            servable_name=trial.servable_name,
            artifacts=describe_artifacts(staging),
            entrypoint=entrypoint,
            python_version=trial.python_version,
            requirements=trial.requirements,
            imports=trial.imports,
            trusted_types=trust,
            input=trial.input,
            outputs=trial.outputs,
        )
        _check_fits(name, version, max(trial.memory_bytes, manifest.artifacts_bytes), check.memory_budget)
        return manifest

    return publish_version(folder, version, fill)


def _check_fits(name: str, version: Version, needed: int, budget: int | None) -> None:
    """Refuse a version that could never be loaded under the servers' memory budget (they would
    refuse it at start, or mark it FAILED): `needed` is what its trial load measured, at least the
    size of its files."""
    if budget is not None and needed > budget:
        raise ModelLoadError(
            f"model '{name}' version {version} takes about {format_bytes(needed)} in memory once loaded "
            f"(measured by its trial load), more than --memory-budget {format_bytes(budget)}",
            hint="raise --memory-budget (or AMMS_MEMORY_BUDGET), or serve this model from a server of its own",
        )


def _copy_artifact(source: Path, staging: Path, loader: str) -> str:
    """Copy a file or a model folder into `staging`; return the manifest's entrypoint."""
    facts = LOADERS[loader]
    if source.is_dir():
        if not facts.folder or not facts.detect(source):
            raise RepositoryError(f"{source} is a folder; the {loader} format takes {facts.description}")
        shutil.copytree(
            source,
            staging,
            dirs_exist_ok=True,
            symlinks=False,
            ignore=shutil.ignore_patterns("__pycache__", ".*"),
        )
        return "."
    shutil.copy2(source, staging / source.name)
    return source.name


def _republish(folder: Path, on_disk: ModelOnDisk, version: VersionChoice) -> VersionOnDisk:
    """Publish the newest sound version's artifacts again under a new number (no PATH given)."""
    reference = next((v for v in reversed(on_disk.versions) if v.ok), None)
    if reference is None or reference.manifest is None:
        raise RepositoryError(
            f"'{on_disk.name}' has no complete version to copy",
            hint=f"pass the model file: `amms bump-version {on_disk.name} PATH`",
        )
    manifest = reference.manifest
    try:
        verify_artifacts(reference.path, manifest)
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(
            exc.message, hint=f"publish from the model file instead: `amms bump-version {on_disk.name} PATH`"
        ) from None

    def fill(staging: Path, version: Version) -> Manifest:
        for artifact in manifest.artifacts:
            target = staging / artifact.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(reference.path / artifact.name, target)
        verify_artifacts(staging, manifest)
        return manifest.model_copy(update={"version": str(version), "created_at": datetime.now(UTC)})

    return publish_version(folder, version, fill)
