"""Write failures while publishing (a full disk, a folder the user may not write): one clear error
line, and the repository and config unchanged.

A full disk is simulated with RLIMIT_FSIZE on the real `amms` process: with SIGXFSZ ignored, a write
past the limit fails with EFBIG exactly where a full disk would fail with ENOSPC.
"""

from __future__ import annotations

import os
import pickle
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import iris_classifier
from projects import amms_argv, make_project


def amms_with_file_limit(limit_bytes: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        amms_argv(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        env={"COLUMNS": "1000", "PATH": "/usr/bin:/bin"},
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes by relative path (lock files, which publishing may create, left out)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_disk_full_during_add_model_and_bump_leaves_everything_as_it_was(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    big = tmp_path / "big.pkl"
    big.write_bytes(pickle.dumps(iris_classifier(padding_mb=2)))
    before = snapshot(tmp_path / "models") | {"amms.json": config.read_bytes()}

    for args in (("add-model", str(big), "--name", "big"), ("bump-version", "iris", str(big))):
        result = amms_with_file_limit(1024 * 1024, *args, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: could not publish to ") and "File too large" in lines[0]
        assert "nothing was published" in lines[0]
        assert lines[1] == "hint: check free disk space and write permission on the models folder"
        assert "Traceback" not in result.stderr

    assert snapshot(tmp_path / "models") | {"amms.json": config.read_bytes()} == before
    assert not any(p.name.startswith(".amms-staging-") for p in (tmp_path / "models").rglob("*"))
    assert not (tmp_path / "models" / "big").exists()


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder outside pytest's private tmp tree, so an unprivileged user can read (not write) it."""
    folder = Path(tempfile.mkdtemp(prefix="amms-perm-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run amms as 'nobody'")
def test_permission_denied_during_add_model_and_bump_leaves_everything_as_it_was(shared_folder: Path) -> None:
    """The repository belongs to root; `amms` runs as the unprivileged user 'nobody' (a real EACCES,
    which root itself never gets)."""
    config = make_project(shared_folder, {"iris": iris_classifier()})
    new_model = shared_folder / "new.pkl"
    new_model.write_bytes(pickle.dumps(iris_classifier()))
    before = snapshot(shared_folder / "models") | {"amms.json": config.read_bytes()}
    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]

    for args in (("add-model", str(new_model), "--name", "fresh"), ("bump-version", "iris", str(new_model))):
        result = subprocess.run(
            [*nobody, *amms_argv(*args)],
            cwd=shared_folder,
            capture_output=True,
            text=True,
            env={"COLUMNS": "1000", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        )
        assert result.returncode == 1, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: could not publish to ") and "Permission denied" in lines[0], lines
        assert "nothing was published" in lines[0]
        assert lines[1] == "hint: check free disk space and write permission on the models folder"
        assert "Traceback" not in result.stderr

    assert snapshot(shared_folder / "models") | {"amms.json": config.read_bytes()} == before
    assert not (shared_folder / "models" / "fresh").exists()
