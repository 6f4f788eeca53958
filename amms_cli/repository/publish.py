"""Publishing a version: fill a hidden staging folder, write the manifest last, rename it into place.
A crash at any point leaves either no version or a complete one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from amms_cli.errors import PublishError
from amms_cli.repository import atomic_files
from amms_cli.repository.manifest import Manifest, write_manifest
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model
from amms_cli.repository.versions import Version

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
