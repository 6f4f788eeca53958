"""One amms repository for the protocol tests (TF Serving, v2, tritonclient), built once per session
through the real CLI from the tiny models of serving_models.py, plus a tabular model with recorded
feature names. Each test module starts its own server on it; nothing writes to it afterwards.
Also: request counts read from a server's /metrics."""

from __future__ import annotations

import contextlib
import json
import pickle
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import onnxruntime as ort
import pytest
from factories import (
    IRIS_ROWS,
    ONNX_ROWS,
    REGRESSION_ROWS,
    TEXTS,
    custom_model_dir,
    iris_classifier,
    regressor,
    save_cloudpickle,
    save_joblib,
    save_onnx,
    save_pickle,
    text_pipeline,
)
from projects import Project
from server_support import metric_values, running_server

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
FEATURE_WEIGHTS = [1.0, 10.0, 100.0, 1000.0]

# A custom model.py served through the tabular servable: it records feature names the way scikit-learn
# does (feature_names_in_), so requests may name columns. Weights make the column order visible.
NAMED_MODEL_PY = textwrap.dedent(
    f"""\
    import numpy as np


    class Model:
        feature_names_in_ = {FEATURES!r}
        n_features_in_ = {len(FEATURES)}

        def load(self, path):
            self.weights = np.array({FEATURE_WEIGHTS!r})

        def predict(self, inputs):
            return np.asarray(inputs, dtype=float) @ self.weights
    """
)


@dataclass
class Repository:
    config: Path
    files: Path  # the artifacts the versions were published from

    def model(self, key: str) -> Any:
        """The in-process object a served version was saved from (read back from its artifact)."""
        loaders = {
            "iris_v100": lambda: pickle.loads((self.files / "iris.pkl").read_bytes()),
            "iris_v110": lambda: pickle.loads((self.files / "iris_v110.pkl").read_bytes()),
            "reg": lambda: joblib.load(self.files / "reg.joblib"),
            "text": lambda: pickle.loads((self.files / "text.pkl").read_bytes()),
        }
        return loaders[key]()

    def onnx_session(self) -> ort.InferenceSession:
        return ort.InferenceSession(str(self.files / "clf.onnx"), providers=["CPUExecutionProvider"])


def named_model_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(NAMED_MODEL_PY)
    return folder


def named_predict(rows: list[list[float]]) -> list[float]:
    return (np.asarray(rows) @ np.asarray(FEATURE_WEIGHTS)).tolist()  # type: ignore[no-any-return]


def protocol_repository(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    """Built on first use in the session's base temp folder, then reused by every protocol module.

    iris: 1.0.0 (pinned, still routable), 1.1.0 (served), 1.2.0 (artifact tampered after publishing, so
    it FAILS its checksum at load); reg (joblib regressor); text (cloudpickle text pipeline); onnx_clf;
    custom (model.py taking a list of numbers); named (tabular, feature names recorded).
    """
    root = tmp_path_factory.getbasetemp() / "protocol-repository"
    repository = Repository(root / "amms.json", root / "artifacts")
    if (root / "built").exists():
        return repository
    root.mkdir()
    files = repository.files
    files.mkdir()
    project = Project.init(root)
    project.add(save_pickle(files / "iris.pkl", iris_classifier()), "iris", example=IRIS_ROWS[:1])
    project.bump("iris", save_pickle(files / "iris_v110.pkl", iris_classifier(c=0.01)), "--minor")
    project.bump("iris", save_pickle(files / "iris_v120.pkl", iris_classifier(c=0.1)), "--minor")
    project.set_fields("iris", pinned_versions=["1.0.0"])
    tampered = root / "models" / "iris" / "1.2.0" / "iris_v120.pkl"
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: only the sha256 tells
    tampered.write_bytes(bytes(data))
    project.add(save_joblib(files / "reg.joblib", regressor()), "reg", example=REGRESSION_ROWS[:1])
    project.add(save_cloudpickle(files / "text.pkl", text_pipeline()), "text", example=TEXTS[:1])
    project.add(save_onnx(files / "clf.onnx"), "onnx_clf", example=ONNX_ROWS[:1])
    project.add(custom_model_dir(files / "custom", weight=3.0), "custom", example=[1, 2])
    project.add(named_model_dir(files / "named"), "named", "--servable", "tabular", example=IRIS_ROWS[:1])
    (root / "built").write_text(
        json.dumps([entry["model_name"] for entry in json.loads(repository.config.read_text())])
    )
    return repository


@dataclass
class Served:
    client: httpx.Client
    repository: Repository


@contextlib.contextmanager
def served_repository(tmp_path_factory: pytest.TempPathFactory, *server_args: str) -> Iterator[Served]:
    """The protocol repository behind a running server, with a client for it."""
    repository = protocol_repository(tmp_path_factory)
    with running_server(repository.config, *server_args) as server, server.client() as client:
        yield Served(client, repository)


def request_counts(client: httpx.Client) -> dict[tuple[str, ...], float]:
    """amms_requests_total by (model, version, protocol, code)."""
    return metric_values(client.get("/metrics").text, "amms_requests_total", "model", "version", "protocol", "code")
