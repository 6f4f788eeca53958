"""Tiny real models for the end-to-end serving tests, and a helper that builds an amms repository
from them through the real CLI (`amms init`, `amms add-model`, `amms bump-version`)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
REGRESSION_ROWS = [[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, -1.0, 0.5, 2.0, 0.0]]
TEXTS = ["a GREAT movie", "an awful film", "great fun"]
ONNX_ROWS = [[0.1, 0.9, 0.3, 0.4], [0.8, 0.1, 0.5, 0.2]]


def iris_classifier(c: float = 1.0) -> LogisticRegression:
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(C=c, max_iter=1000).fit(features, labels)


def regressor() -> LinearRegression:
    rng = np.random.default_rng(0)
    features = rng.random((50, 5))
    return LinearRegression().fit(features, features @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.25)


def text_pipeline() -> Pipeline:
    """Its first step is a lambda, so only cloudpickle can save it."""
    texts = ["great movie", "awful film", "great acting", "awful plot", "GREAT fun", "Awful mess"]
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    lowercase = FunctionTransformer(lambda batch: [text.lower() for text in batch])
    return make_pipeline(lowercase, TfidfVectorizer(), LogisticRegression()).fit(texts, labels)


def onnx_bytes() -> bytes:
    """A LogisticRegression on 4 float features, converted by skl2onnx (labels + ZipMap probabilities)."""
    from skl2onnx import to_onnx

    rng = np.random.default_rng(3)
    features = rng.random((40, 4)).astype(np.float32)
    model = LogisticRegression().fit(features, (features[:, 1] > 0.5).astype(np.int64))
    return to_onnx(model, features[:1], target_opset=17).SerializeToString()  # type: ignore[no-any-return]


# A custom model.py: `inputs` is a list of numbers. Environment variables (set only on the server
# process, never during `add-model`) make it slow to load, or let it raise for one input.
CUSTOM_MODEL_PY = textwrap.dedent(
    """\
    import json
    import os
    import time
    from pathlib import Path


    class Model:
        def load(self, path):
            time.sleep(float(os.environ.get("AMMS_TEST_LOAD_SLEEP", "0")))
            self.weight = json.loads((Path(path) / "weights.json").read_text())["weight"]

        def predict(self, inputs):
            if "boom" in inputs:
                raise RuntimeError("secret internal detail")
            if "sleep" in inputs:
                time.sleep(float(inputs[-1]))
                return ["slept"]
            return [self.weight * value for value in inputs]
    """
)


def custom_model_dir(folder: Path, weight: float = 2.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(CUSTOM_MODEL_PY)
    (folder / "weights.json").write_text(json.dumps({"weight": weight}))
    return folder


def save_pickle(path: Path, obj: Any) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def save_joblib(path: Path, obj: Any) -> Path:
    joblib.dump(obj, path)
    return path


def save_cloudpickle(path: Path, obj: Any) -> Path:
    path.write_bytes(cloudpickle.dumps(obj))
    return path


def save_onnx(path: Path) -> Path:
    path.write_bytes(onnx_bytes())
    return path


class Project:
    """An amms project folder driven through the real CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "amms.json"
        folder.mkdir(parents=True, exist_ok=True)
        self.amms("init", str(folder))

    def amms(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "amms_cli", *args], capture_output=True, text=True, cwd=self.folder, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"amms {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def add(self, path: Path, name: str, *options: str, example: Any = None) -> None:
        extra = ["--example", json.dumps(example)] if example is not None else []
        self.amms("add-model", str(path), "--name", name, "--config", str(self.config), *extra, *options)

    def bump(self, name: str, path: Path | None = None, *options: str) -> None:
        source = [str(path)] if path is not None else []
        self.amms("bump-version", name, *source, "--config", str(self.config), *options)

    def set_fields(self, name: str, **fields: Any) -> None:
        """Edit one entry of amms.json (fields the CLI has no option for: pinned_versions, batching)."""
        entries = json.loads(self.config.read_text())
        for entry in entries:
            if entry["model_name"] == name:
                entry.update(fields)
        self.config.write_text(json.dumps(entries, indent=2))
