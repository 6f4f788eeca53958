"""The repository on disk: scanning version folders, resolving the served version, publishing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from projects import payload_manifest, publish_payloads

from amms_cli.errors import PublishError
from amms_cli.repository import atomic_files, manifest
from amms_cli.repository.manifest import MANIFEST_NAME, Manifest, read_manifest
from amms_cli.repository.publish import publish_version
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model, verify_version
from amms_cli.repository.versions import Version, VersionPattern


def fill_with(payload: bytes) -> Callable[[Path, Version], Manifest]:
    """A `fill` for publish_version that writes one artifact and describes it (no model loading)."""

    def fill(staging: Path, version: Version) -> Manifest:
        (staging / "model.bin").write_bytes(payload)
        return payload_manifest(staging, version)

    return fill


publish = publish_payloads


def names(model: ModelOnDisk) -> list[str]:
    return [str(v.version) for v in model.versions]


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    return tmp_path / "models" / "model"


def test_versions_are_ordered_semantically_not_by_name_or_time(model_folder: Path) -> None:
    publish(model_folder, "1.10.0", "1.9.0", "1.2.0")
    os.utime(model_folder / "1.9.0", (2_000_000_000, 2_000_000_000))  # the newest folder by mtime
    model = scan_model(model_folder, "model")
    assert names(model) == ["1.2.0", "1.9.0", "1.10.0"]
    assert str(model.newest().version) == "1.10.0"  # type: ignore[union-attr]
    assert str(model.resolve(VersionPattern.parse("latest")).version) == "1.10.0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "served"),
    [("latest", "2.0.0"), ("1.x", "1.10.0"), ("1.2.x", "1.2.5"), ("1.2.3", "1.2.3"), ("1.3.x", None), ("3.x", None)],
)
def test_every_pattern_resolves_against_the_repository(model_folder: Path, pattern: str, served: str | None) -> None:
    publish(model_folder, "1.0.0", "1.2.3", "1.2.5", "1.9.0", "1.10.0", "2.0.0")
    chosen = scan_model(model_folder, "model").resolve(VersionPattern.parse(pattern))
    assert (str(chosen.version) if chosen else None) == served


def test_resolve_skips_incomplete_and_excluded_versions(model_folder: Path) -> None:
    publish(model_folder, "1.0.0", "1.1.0", "1.2.0")
    (model_folder / "1.3.0").mkdir()  # a folder without its manifest is not a version yet
    model = scan_model(model_folder, "model")
    assert model.get(Version(1, 3, 0)).problem == "1.3.0: no amms-version.json (incomplete version)"  # type: ignore[union-attr]
    pattern = VersionPattern.parse("1.x")
    assert str(model.resolve(pattern).version) == "1.2.0"  # type: ignore[union-attr]
    assert str(model.resolve(pattern, frozenset({Version(1, 2, 0)})).version) == "1.1.0"  # type: ignore[union-attr]


def test_non_version_entries_are_ignored_with_a_warning(model_folder: Path) -> None:
    publish(model_folder, "1.0.0")
    for name in ["latest", "1.0", "01.0.0", "v1.0.1"]:
        (model_folder / name).mkdir()
    (model_folder / "notes.txt").write_text("x")
    (model_folder / ".amms-staging-1.0.1-abcd").mkdir()  # hidden: skipped without a warning
    model = scan_model(model_folder, "model")
    assert names(model) == ["1.0.0"]
    assert sorted(model.warnings) == sorted(
        f"model/{name}: ignored (not a MAJOR.MINOR.PATCH version folder)"
        for name in ["latest", "1.0", "01.0.0", "v1.0.1", "notes.txt"]
    )


def test_a_missing_model_folder_has_no_versions(tmp_path: Path) -> None:
    assert scan_model(tmp_path / "absent", "absent").versions == ()


def test_invalid_or_mismatched_manifests_are_problems(model_folder: Path) -> None:
    publish(model_folder, "1.0.0", "1.1.0")
    (model_folder / "1.0.0" / MANIFEST_NAME).write_text("{")
    os.rename(model_folder / "1.1.0", model_folder / "1.2.0")
    problems = {str(v.version): v.problem for v in scan_model(model_folder, "model").versions}
    assert problems["1.0.0"].startswith("1.0.0: invalid amms-version.json: ")  # type: ignore[union-attr]
    assert problems["1.2.0"] == "1.2.0: its manifest says version 1.1.0"


@pytest.fixture
def sound_version(model_folder: Path) -> VersionOnDisk:
    publish(model_folder, "1.0.0")
    version = scan_model(model_folder, "model").versions[0]
    assert verify_version(version) is None
    return version


def test_tampered_artifact_is_a_checksum_mismatch(sound_version: VersionOnDisk) -> None:
    (sound_version.path / "model.bin").write_bytes(b"1.0.1")  # same size, other bytes
    assert verify_version(sound_version) == "1.0.0: checksum mismatch for 'model.bin'"


def test_truncated_artifact_reports_sizes(sound_version: VersionOnDisk) -> None:
    (sound_version.path / "model.bin").write_bytes(b"1.0")
    assert verify_version(sound_version) == "1.0.0: 'model.bin' has 3 bytes, recorded 5 (tampered or truncated)"


def test_missing_artifact(sound_version: VersionOnDisk) -> None:
    (sound_version.path / "model.bin").unlink()
    assert verify_version(sound_version) == "1.0.0: artifact 'model.bin' is missing"


def test_a_verified_file_is_hashed_again_only_once_it_changed(
    sound_version: VersionOnDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model cache verifies the same files again and again: a file whose checksum matched is not
    hashed again while its size and times are unchanged; a change is caught even with its
    modification time put back (the change time cannot be)."""
    monkeypatch.setattr(manifest, "_SETTLED_NS", 0)  # the fixture's file was written just now
    hashed: list[object] = []
    real_sha256 = manifest._sha256_of
    monkeypatch.setattr(manifest, "_sha256_of", lambda handle: hashed.append(handle) or real_sha256(handle))
    assert verify_version(sound_version) is None
    assert verify_version(sound_version) is None
    assert len(hashed) == 1
    path = sound_version.path / "model.bin"
    before = path.stat()
    time.sleep(0.05)  # past the tick of the clock file times are taken from
    path.write_bytes(b"1.0.1")  # same size, other bytes
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert verify_version(sound_version) == "1.0.0: checksum mismatch for 'model.bin'"
    assert len(hashed) == 2


def test_symlinked_artifact_is_refused(sound_version: VersionOnDisk, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"1.0.0")
    (sound_version.path / "model.bin").unlink()
    (sound_version.path / "model.bin").symlink_to(outside)
    assert verify_version(sound_version) == "1.0.0: 'model.bin' is a symlink; refusing to load it"


def test_artifact_under_a_symlinked_folder_is_refused(sound_version: VersionOnDisk, tmp_path: Path) -> None:
    """A name without `..` can still leave the folder through a symlinked sub-folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.bin").write_bytes(b"1.0.0")
    (sound_version.path / "sub").symlink_to(elsewhere)
    manifest = read_manifest(sound_version.path)
    nested = manifest.artifacts[0].model_copy(update={"name": "sub/model.bin"})
    tampered = VersionOnDisk(
        sound_version.version, sound_version.path, manifest.model_copy(update={"artifacts": [nested]})
    )
    assert verify_version(tampered) == "1.0.0: manifest names 'sub/model.bin' outside its folder"


def test_manifest_naming_a_file_outside_its_folder(sound_version: VersionOnDisk) -> None:
    manifest = read_manifest(sound_version.path)
    escaped = manifest.artifacts[0].model_copy(update={"name": "../../secret"})
    tampered = VersionOnDisk(
        sound_version.version, sound_version.path, manifest.model_copy(update={"artifacts": [escaped]})
    )
    assert verify_version(tampered) == "1.0.0: manifest names '../../secret' outside its folder"


def test_publish_renames_a_complete_folder_into_place(model_folder: Path) -> None:
    published = publish_version(model_folder, Version(1, 0, 0), fill_with(b"abc"))
    assert published.path == model_folder / "1.0.0"
    assert sorted(p.name for p in published.path.iterdir()) == [MANIFEST_NAME, "model.bin"]
    assert read_manifest(published.path) == published.manifest
    assert [p.name for p in model_folder.iterdir() if p.name.startswith(atomic_files.STAGING_PREFIX)] == []


def test_a_failing_fill_leaves_nothing_behind(model_folder: Path) -> None:
    def broken(staging: Path, version: Version) -> Manifest:
        (staging / "model.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish_version(model_folder, Version(1, 0, 0), broken)
    assert [p.name for p in model_folder.iterdir()] == [atomic_files.LOCK_NAME]


def test_an_existing_version_is_never_replaced(model_folder: Path) -> None:
    publish(model_folder, "1.0.0")
    with pytest.raises(PublishError, match=r"version 1\.0\.0 of 'model' already exists") as caught:
        publish(model_folder, "1.0.0")
    assert "bump-version" in (caught.value.hint or "")
    assert (model_folder / "1.0.0" / "model.bin").read_bytes() == b"1.0.0"


def test_stale_staging_folders_are_removed_by_the_next_publish(model_folder: Path) -> None:
    stale = atomic_files.new_staging_dir(model_folder, "1.0.0")
    (stale / "model.bin").write_bytes(b"partial")
    publish(model_folder, "1.0.0")
    assert not stale.exists()


def test_concurrent_publishers_choose_distinct_versions(model_folder: Path) -> None:
    """The folder lock serialises choosing the next number and publishing it."""
    publish(model_folder, "1.0.0")

    def next_patch(model: ModelOnDisk) -> Version:
        return model.newest().version.bump("patch")  # type: ignore[union-attr]

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            publish_version(model_folder, next_patch, fill_with(b"x"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert names(scan_model(model_folder, "model")) == [f"1.0.{n}" for n in range(7)]
