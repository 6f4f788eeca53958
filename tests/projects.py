"""amms projects in temporary folders, driven through the real `amms` command, and versions published
directly when a test needs one the CLI would refuse (models meant to misbehave)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factories import IRIS_ROW, save_pickle

from amms_cli.repository.manifest import (
    MANIFEST_NAME,
    InputInfo,
    Manifest,
    describe_artifacts,
    read_manifest,
    write_manifest,
)
from amms_cli.repository.publish import publish_version
from amms_cli.repository.versions import Version


def amms_argv(*args: str) -> list[str]:
    """The installed `amms` console script, or the same entry point through this interpreter."""
    script = shutil.which("amms", path=str(Path(sys.executable).parent)) or shutil.which("amms")
    if script:
        return [script, *args]
    return [sys.executable, "-m", "amms_cli", *args]


def amms_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMMS_") and k != "FORCE_COLOR"}
    # Rich hard-wraps at 80 columns when the output is not a terminal; see
    # test_authoring_cli.test_errors_stay_on_one_line_at_the_default_width
    return env | {"COLUMNS": "1000", "NO_COLOR": "1"} | extra


def run_amms(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `amms` command as its own process; with `check`, a failure fails the test."""
    result = subprocess.run(
        amms_argv(*args), cwd=cwd, env=env or amms_env(), capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"amms {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


@dataclass(frozen=True)
class Project:
    """An amms project folder: amms.json and models/ (relative load_url, so copies stay valid)."""

    root: Path

    @classmethod
    def init(cls, root: Path) -> Project:
        """`amms init` in a new folder."""
        root.mkdir(parents=True, exist_ok=True)
        run_amms("init", str(root), cwd=root, check=True)
        return cls(root)

    @property
    def config(self) -> Path:
        return self.root / "amms.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_amms(*args, cwd=self.root, env=env)

    def amms(self, *args: str) -> str:
        """Run a command that must succeed; its standard output."""
        return run_amms(*args, cwd=self.root, check=True).stdout

    def add(self, path: Path, name: str, *options: str, example: Any = None) -> None:
        extra = ["--example", json.dumps(example)] if example is not None else []
        self.amms("add-model", str(path), "--name", name, "--config", str(self.config), *extra, *options)

    def bump(self, name: str, path: Path | None = None, *options: str) -> None:
        source = [str(path)] if path is not None else []
        self.amms("bump-version", name, *source, "--config", str(self.config), *options)

    def entries(self) -> list[dict[str, Any]]:
        return json.loads(self.config.read_text())  # type: ignore[no-any-return]

    def write_entries(self, entries: list[dict[str, Any]]) -> None:
        self.config.write_text(json.dumps(entries, indent=2))

    def set_fields(self, name: str, **fields: Any) -> None:
        """Edit one entry of amms.json (fields the CLI has no option for: pinned_versions, batching)."""
        entries = self.entries()
        for entry in entries:
            if entry["model_name"] == name:
                entry.update(fields)
        self.write_entries(entries)

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        return json.loads((self.models / name / version / "amms-version.json").read_text())  # type: ignore[no-any-return]

    def versions(self, name: str) -> list[str]:
        """Visible entries of a model folder (hidden staging folders and the lock excluded)."""
        folder = self.models / name
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []

    def copy_to(self, target: Path) -> Project:
        shutil.copytree(self.root, target)
        return Project(target)


def make_project(folder: Path, models: dict[str, Any]) -> Path:
    """`amms init` + `amms add-model` (pickled, with an iris example) for each model; the config path."""
    project = Project.init(folder)
    for name, model in models.items():
        project.add(save_pickle(folder / f"{name}.pkl", model), name, example=[IRIS_ROW])
    return project.config


def error_of(result: subprocess.CompletedProcess[str]) -> tuple[str, str | None]:
    """Assert a failed command printed one error line (and at most one hint line) and no traceback;
    return the message and the hint."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, output
    assert lines[0].startswith("error: "), output
    hint = None
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), output
        hint = lines[1].removeprefix("hint: ")
    return lines[0].removeprefix("error: "), hint


def bare_manifest(name: str, version: str, **fields: Any) -> Manifest:
    """The manifest of a pickled scikit-learn model, without artifacts unless given (for tests that
    never load one)."""
    values: dict[str, Any] = {
        "model_name": name,
        "version": version,
        "created_at": datetime.now(UTC),
        "loader": "pickle",
        "framework": "scikit-learn",
        "servable_name": "tabular",
        "artifacts": [],
        "entrypoint": "model.bin",
        "python_version": "3.11.0",
    }
    return Manifest(**(values | fields))


def payload_manifest(staging: Path, version: Version, name: str = "model") -> Manifest:
    """The manifest of a version folder holding one opaque `model.bin` (for tests that never load it)."""
    return bare_manifest(name, str(version), artifacts=describe_artifacts(staging))


def publish_payloads(model_folder: Path, *versions: str) -> None:
    """Publish each version with its own text as the artifact's bytes."""
    for text in versions:

        def fill(staging: Path, version: Version, payload: bytes = text.encode()) -> Manifest:
            (staging / "model.bin").write_bytes(payload)
            return payload_manifest(staging, version, model_folder.name)

        publish_version(model_folder, Version.parse(text), fill)


def clone_model(models: Path, source: str, name: str) -> None:
    """Copy a model's folder (every version) under a new name, each manifest renamed to match: many
    models for the price of one `add-model`."""
    shutil.copytree(models / source, models / name)
    for manifest_path in (models / name).glob(f"*/{MANIFEST_NAME}"):
        manifest = read_manifest(manifest_path.parent)
        write_manifest(manifest_path.parent, manifest.model_copy(update={"model_name": name}))


def publish_broken(model_folder: Path, version: str, payload: bytes) -> None:
    """Publish a version whose artifact is `payload` with a manifest that matches it (so checksums pass
    and the failure is the load itself), copying the rest of the manifest from the newest version."""
    newest = max(
        (p for p in model_folder.iterdir() if p.is_dir() and Version.is_valid(p.name)),
        key=lambda p: Version.parse(p.name),
    )
    reference = read_manifest(newest)

    def fill(staging: Path, chosen: Version) -> Manifest:
        (staging / reference.entrypoint).write_bytes(payload)
        return reference.model_copy(update={"version": str(chosen), "artifacts": describe_artifacts(staging)})

    publish_version(model_folder, Version.parse(version), fill)


def publish_custom(model_folder: Path, version: str, source: str, example: object = None) -> None:
    """Publish a custom model.py version directly (no trial load: these models are meant to misbehave)."""

    def fill(staging: Path, chosen: Version) -> Manifest:
        (staging / "model.py").write_text(source)
        return Manifest(
            model_name=model_folder.name,
            version=str(chosen),
            created_at=datetime.now(UTC),
            loader="custom",
            framework="custom",
            servable_name="custom",
            artifacts=describe_artifacts(staging),
            entrypoint=".",
            python_version=platform.python_version(),
            input=InputInfo(example=example, example_given=example is not None),
        )

    model_folder.mkdir(parents=True, exist_ok=True)
    publish_version(model_folder, Version.parse(version), fill)


# a custom model whose every prediction takes a second
SLOW_PREDICT = """
import time

class Model:
    def load(self, path):
        pass

    def predict(self, inputs):
        time.sleep(1.0)
        return inputs
"""


# a custom model whose load() raises
RAISES_IN_LOAD = """
class Model:
    def load(self, path):
        raise RuntimeError("no weights")

    def predict(self, inputs):
        return inputs
"""


def add_entries(config: Path, *entries: dict[str, object]) -> None:
    """Append raw entries to a config file (fields and states the CLI would not write)."""
    config.write_text(json.dumps([*json.loads(config.read_text()), *entries]))


def custom_entry(name: str, **fields: object) -> dict[str, object]:
    return {"model_name": name, "aspired_version": "1.x", "servable_name": "custom", **fields}
