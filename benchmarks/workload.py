"""The benchmark's models and the amms repository that serves them.

`iris_lr`: LogisticRegression on iris (4 features), a cheap model (~75 µs per predict).
`rf`: RandomForestClassifier, 100 trees of depth 10 on 20 features, an expensive one (~3 ms).
`table`: the pipeline a data scientist ships, fitted on a pandas DataFrame (one-hot city, imputed and
scaled age and income, a boolean passed through, LogisticRegression with string labels); a request is
one record with a null in it (~3-5 ms per predict, most of it the ColumnTransformer).
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' model factories
from factories import table_pipeline

MODEL_NAMES = ("iris_lr", "rf", "table")
TABLE_RECORD = {"city": "paris", "age": 30, "income": None, "member": True}


@dataclass(frozen=True)
class BenchModel:
    name: str
    path: Path  # the pickle every server loads
    row: list[Any] | dict[str, Any]  # the single row (or record) sent by every request


def train(name: str) -> tuple[object, list[Any] | dict[str, Any]]:
    if name == "iris_lr":
        features, labels = load_iris(return_X_y=True)
        return LogisticRegression(max_iter=1000).fit(features, labels), features[0].tolist()
    if name == "rf":
        features, labels = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
        forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(features, labels)
        return forest, np.round(features[0], 6).tolist()
    if name == "table":
        return table_pipeline(rows=400), TABLE_RECORD
    raise ValueError(f"unknown benchmark model {name!r} (known: {', '.join(MODEL_NAMES)})")


def train_models(names: list[str], folder: Path) -> list[BenchModel]:
    folder.mkdir(parents=True, exist_ok=True)
    models = []
    for name in names:
        model, row = train(name)
        path = folder / f"{name}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        models.append(BenchModel(name, path, row))
    return models


def amms(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "amms_cli", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"amms {' '.join(args)} failed:\n{done.stderr or done.stdout}")


def build_repository(models: list[BenchModel], folder: Path) -> Path:
    """`amms init` and `amms add-model` for each model; returns the config (no batching settings: each
    model gets amms' default, batching on for these row-independent models).
    The folder is the benchmark's own scratch space: a repository left there by a previous run goes."""
    shutil.rmtree(folder, ignore_errors=True)
    amms("init", str(folder), cwd=folder.parent)
    for model in models:
        example = json.dumps([model.row])
        amms("add-model", str(model.path), "--name", model.name, "--example", example, cwd=folder)
    return folder / "amms.json"


def batched_config(config: Path, max_batch_size: int, max_wait_ms: float) -> Path:
    """A second config beside the first, over the same repository, with adaptive batching on."""
    entries = json.loads(config.read_text())
    for entry in entries:
        entry.update(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
    path = config.with_name("amms-batched.json")
    path.write_text(json.dumps(entries, indent=2))
    return path
