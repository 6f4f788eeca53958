"""The model repository on disk: `<load_url>/<model_name>/<version>/` folders with a manifest.

This module discovers and publishes versions; it never loads a model (that is the registry's job).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amms_cli.errors import AmmsError, PublishError, RepositoryError
from amms_cli.repository import atomic_files
from amms_cli.repository.manifest import MANIFEST_NAME, Manifest, read_manifest, verify_artifacts, write_manifest
from amms_cli.repository.versions import Version, VersionPattern


@dataclass(frozen=True)
class VersionOnDisk:
    """One version folder; `problem` says why it cannot be served, starting with the version (None
    when it looks complete)."""

    version: Version
    path: Path
    manifest: Manifest | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.manifest is not None


@dataclass(frozen=True)
class ModelOnDisk:
    name: str
    folder: Path
    versions: tuple[VersionOnDisk, ...] = ()  # ascending by semantic version
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def get(self, version: Version) -> VersionOnDisk | None:
        return next((v for v in self.versions if v.version == version), None)

    def newest(self) -> VersionOnDisk | None:
        return self.versions[-1] if self.versions else None

    def resolve(self, pattern: VersionPattern, exclude: frozenset[Version] = frozenset()) -> VersionOnDisk | None:
        """The newest complete version matching `pattern`, skipping `exclude` (e.g. failed ones)."""
        candidates = [v for v in self.versions if v.ok and v.version not in exclude and pattern.matches(v.version)]
        return candidates[-1] if candidates else None


def scan_model(folder: Path, name: str) -> ModelOnDisk:
    """Every version folder under `folder`. Hidden entries (staging folders) are skipped silently;
    other non-version entries are reported as warnings."""
    if not folder.is_dir():
        return ModelOnDisk(name, folder)
    if escapes(folder):
        return ModelOnDisk(
            name, folder, (), (f"{name}: refused, a symlink to {folder.resolve()} outside {folder.parent}",)
        )
    versions: list[VersionOnDisk] = []
    warnings: list[str] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if not child.is_dir() or not Version.is_valid(child.name):
            warnings.append(f"{name}/{child.name}: ignored (not a MAJOR.MINOR.PATCH version folder)")
            continue
        versions.append(_read_version(child))
    versions.sort(key=lambda v: v.version)
    return ModelOnDisk(name, folder, tuple(versions), tuple(warnings))


def escapes(path: Path) -> bool:
    """True when `path` is a symlink (or under one) leading out of its parent folder."""
    return not path.resolve().is_relative_to(path.parent.resolve())


def _read_version(path: Path) -> VersionOnDisk:
    version = Version.parse(path.name)
    if escapes(path):
        return VersionOnDisk(
            version, path, None, f"{path.name}: refused, a symlink to {path.resolve()} outside its model folder"
        )
    if not (path / MANIFEST_NAME).exists():
        return VersionOnDisk(version, path, None, f"{path.name}: no {MANIFEST_NAME} (incomplete version)")
    try:
        manifest = read_manifest(path)
    except RepositoryError as exc:
        return VersionOnDisk(version, path, None, exc.message)
    if manifest.version != path.name:
        return VersionOnDisk(version, path, None, f"{path.name}: its manifest says version {manifest.version}")
    return VersionOnDisk(version, path, manifest)


def verify_version(entry: VersionOnDisk) -> str | None:
    """Full check (checksums included); the problem as text, or None when the version is sound."""
    if entry.manifest is None:
        return entry.problem
    try:
        verify_artifacts(entry.path, entry.manifest)
    except AmmsError as exc:
        return exc.message
    return entry.problem


VersionChoice = Version | Callable[[ModelOnDisk], Version]


def publish_version(
    model_folder: Path, choose: VersionChoice, fill: Callable[[Path, Version], Manifest]
) -> VersionOnDisk:
    """Publish a version atomically: `fill(staging, version)` copies artifacts into a hidden folder
    beside the final one and returns the manifest; the manifest is written last and the folder renamed
    into place. Writers of one model are serialised by a lock, so the version number is chosen (from
    what is on disk, when `choose` is a function) and stale staging folders left by a killed writer are
    removed while it is held. A failed write (disk full, permission denied) leaves nothing behind."""
    try:
        return _publish_locked(model_folder, choose, fill)
    except OSError as exc:
        where = exc.filename or model_folder
        raise PublishError(
            f"could not publish to {model_folder}: {exc.strerror or exc} ({where}); nothing was published",
            hint="check free disk space and write permission on the models folder",
        ) from None


def _publish_locked(
    model_folder: Path, choose: VersionChoice, fill: Callable[[Path, Version], Manifest]
) -> VersionOnDisk:
    with atomic_files.folder_lock(model_folder):
        remove_stale_staging(model_folder)
        version = choose if isinstance(choose, Version) else choose(scan_model(model_folder, model_folder.name))
        final = model_folder / str(version)
        if final.exists():
            raise PublishError(
                f"version {version} of '{model_folder.name}' already exists",
                hint="use `amms bump-version` to publish the next version",
            )
        staging = atomic_files.new_staging_dir(model_folder, str(version))
        try:
            manifest = fill(staging, version)
            write_manifest(staging, manifest)
            atomic_files.publish_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return VersionOnDisk(version, final, manifest)


def remove_stale_staging(model_folder: Path) -> None:
    for child in model_folder.glob(f"{atomic_files.STAGING_PREFIX}*"):
        shutil.rmtree(child, ignore_errors=True)
