"""Kill real `amms add-model` / `amms bump-version` processes in the middle of publishing: a version
folder is either absent or complete with valid checksums; only hidden staging folders may remain,
and the next publish removes them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from projects import Project, amms_argv, amms_env

from amms_cli.project.config import load_config
from amms_cli.repository import atomic_files
from amms_cli.repository.scan import scan_model, verify_version

# when to SIGKILL, as a fraction of how long an undisturbed publish takes on this machine (from the
# staging folder appearing to the command exiting): from "just started copying" to "renaming"
KILL_AT = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
KILL_ADD_AT = (0.0, 0.1, 0.4, 0.7, 0.9)  # add-model spends most of its publish probing: a wide window


def staging_folders(model_folder: Path) -> list[Path]:
    return list(model_folder.glob(f"{atomic_files.STAGING_PREFIX}*")) if model_folder.is_dir() else []


def start(project: Project, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        amms_argv(*args),
        cwd=project.root,
        env=amms_env(TMPDIR=str(project.root.parent)),  # a killed probe's temp folder stays in tmp_path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # one process group: the command and its probe child
    )


def wait_for_new_staging(child: subprocess.Popen[bytes], model_folder: Path, old: list[Path]) -> None:
    """Until `child` starts filling a staging folder of its own (a killed run's may still be there)."""
    deadline = time.monotonic() + 60
    while child.poll() is None and set(staging_folders(model_folder)) <= set(old) and time.monotonic() < deadline:
        time.sleep(0.001)


def publish_duration(project: Project, model_folder: Path, *args: str) -> float:
    """Run `amms ARGS` undisturbed; seconds from its staging folder appearing to its exit."""
    child = start(project, *args)
    wait_for_new_staging(child, model_folder, staging_folders(model_folder))
    began = time.monotonic()
    assert child.wait(timeout=120) == 0
    return time.monotonic() - began


def kill_while_publishing(project: Project, model_folder: Path, delay: float, *args: str) -> int:
    """Start `amms ARGS`, wait until it fills a staging folder, wait `delay`, then SIGKILL it and its
    probe child. Return the exit code (-9 when the kill landed)."""
    old = staging_folders(model_folder)
    child = start(project, *args)
    wait_for_new_staging(child, model_folder, old)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):  # it finished first
        os.killpg(child.pid, signal.SIGKILL)
    return child.wait(timeout=60)


def assert_no_partial_version(model_folder: Path) -> None:
    """Every visible entry is a complete, verified version; hidden ones are the lock or staging."""
    if not model_folder.is_dir():
        return
    for child in model_folder.iterdir():
        if child.name.startswith("."):
            assert child.name == atomic_files.LOCK_NAME or child.name.startswith(atomic_files.STAGING_PREFIX), child
    model = scan_model(model_folder, model_folder.name)
    assert model.warnings == ()
    for version in model.versions:
        assert verify_version(version) is None, version


def assert_config_is_sound(project: Project) -> None:
    """The config parses, and every configured model has a complete version."""
    for entry in load_config(project.config).models:
        model = scan_model(project.models / entry.model_name, entry.model_name)
        assert model.versions, entry.model_name
        assert all(verify_version(v) is None for v in model.versions)


def test_killed_add_model_leaves_no_partial_version(project: Project, big_artifact: Path) -> None:
    duration = publish_duration(project, project.models / "big", "add-model", str(big_artifact), "--name", "big")
    outcomes = []
    for number, fraction in enumerate(KILL_ADD_AT):
        name = f"big{number}"
        folder = project.models / name
        code = kill_while_publishing(project, folder, fraction * duration, "add-model", str(big_artifact), "-n", name)
        assert_no_partial_version(folder)
        assert_config_is_sound(project)
        outcomes.append((code, bool(staging_folders(folder))))
    assert (-signal.SIGKILL, True) in outcomes, "no kill landed in the middle of publishing"


def test_killed_bump_version_leaves_no_partial_version(project: Project, big_artifact: Path) -> None:
    first = project.run("add-model", str(big_artifact), "--name", "big")
    assert first.returncode == 0, first.stderr
    folder = project.models / "big"
    duration = publish_duration(project, folder, "bump-version", "big")
    outcomes = []
    for fraction in KILL_AT:
        code = kill_while_publishing(project, folder, fraction * duration, "bump-version", "big", "--minor")
        assert_no_partial_version(folder)
        outcomes.append((code, bool(staging_folders(folder))))
    assert (-signal.SIGKILL, True) in outcomes, "no kill landed in the middle of publishing"
    assert load_config(project.config).entry("big") is not None

    versions_before = project.versions("big")
    result = project.run("bump-version", "big")
    assert result.returncode == 0, result.stderr
    assert staging_folders(folder) == []
    assert len(project.versions("big")) == len(versions_before) + 1
    assert_no_partial_version(folder)
