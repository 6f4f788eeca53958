"""Write failures while publishing: one clear error line, and the repository and config unchanged.

A full disk is simulated with RLIMIT_FSIZE on the real `amms` process: with SIGXFSZ ignored, a write
past the limit fails with EFBIG exactly where a full disk would fail with ENOSPC.
"""

from __future__ import annotations

import pickle
import resource
import signal
import subprocess
import sys
from pathlib import Path

from live_models import iris_model, make_project


def amms_with_file_limit(limit_bytes: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "amms_cli", *args],
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
    config = make_project(tmp_path, {"iris": iris_model()})
    big = tmp_path / "big.pkl"
    big.write_bytes(pickle.dumps(iris_model(padding_mb=2)))
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
