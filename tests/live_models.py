"""Repositories for the live-reload tests, made with the real CLI from real scikit-learn models."""

from __future__ import annotations

import json
import pickle
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from amms_cli.repository.manifest import InputInfo, Manifest, describe_artifacts, read_manifest
from amms_cli.repository.publish import publish_version
from amms_cli.repository.versions import Version

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def amms(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "amms_cli", *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"amms {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def iris_model(padding_mb: int = 0) -> LogisticRegression:
    """An iris classifier; `padding_mb` adds that much random data, so holding an old version in
    memory shows in the server's RSS."""
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    if padding_mb:
        model.padding_ = np.random.default_rng(0).random(padding_mb * 1024 * 1024 // 8)
    return model


def make_project(folder: Path, models: dict[str, LogisticRegression]) -> Path:
    """`amms init` + `amms add-model` for each model; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    amms("init", ".", cwd=folder)
    for name, model in models.items():
        artifact = folder / f"{name}.pkl"
        artifact.write_bytes(pickle.dumps(model))
        amms("add-model", str(artifact), "--name", name, "--example", json.dumps([IRIS_ROW]), cwd=folder)
    return folder / "amms.json"


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
    """Publish a custom model.py version directly (no probe: these models are meant to misbehave)."""

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
            input=InputInfo(example=example),
        )

    model_folder.mkdir(parents=True, exist_ok=True)
    publish_version(model_folder, Version.parse(version), fill)


def custom_entry(name: str, **fields: object) -> dict[str, object]:
    return {"model_name": name, "aspired_version": "1.x", "servable_name": "custom", **fields}
