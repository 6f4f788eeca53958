"""End to end: the native API of a real `amms serve` process, one model per loader, two versions at once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
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
from server_support import ServerProcess, running_server


@dataclass
class Served:
    server: ServerProcess
    client: httpx.Client
    models: dict[str, Any]  # the in-process objects the server's artifacts were saved from
    onnx: ort.InferenceSession


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("native")
    files = folder / "artifacts"
    files.mkdir()
    models = {
        "iris": iris_classifier(),
        "iris_v110": iris_classifier(c=0.01),
        "reg": regressor(),
        "text": text_pipeline(),
    }
    project = Project.init(folder)
    project.add(save_pickle(files / "iris.pkl", models["iris"]), "iris", example=IRIS_ROWS[:1])
    project.bump("iris", save_pickle(files / "iris2.pkl", models["iris_v110"]), "--minor")
    project.set_fields("iris", pinned_versions=["1.0.0"])
    project.add(save_joblib(files / "reg.joblib", models["reg"]), "reg")
    project.set_fields("reg", max_batch_size=16, max_wait_ms=5)
    project.add(save_cloudpickle(files / "text.pkl", models["text"]), "text", example=TEXTS[:1])
    onnx_path = save_onnx(files / "clf.onnx")
    project.add(onnx_path, "onnx_clf")
    project.add(custom_model_dir(files / "custom", weight=3.0), "custom", example=[1, 2])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with running_server(project.config) as server, server.client() as client:
        yield Served(server, client, models, session)


def predict(client: httpx.Client, path: str, inputs: Any, **extra: Any) -> dict[str, Any]:
    response = client.post(path, json={"inputs": inputs, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def onnx_run(session: ort.InferenceSession, rows: list[list[float]]) -> tuple[list[int], list[dict[int, float]]]:
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: np.asarray(rows, dtype=np.float32)})
    return labels.tolist(), probabilities


def test_the_pickle_classifier_predicts_like_in_process(served: Served) -> None:
    body = predict(served.client, "/models/iris/predict", IRIS_ROWS)
    assert body == {
        "model": "iris",
        "version": "1.1.0",
        "outputs": served.models["iris_v110"].predict(IRIS_ROWS).tolist(),
    }


def test_class_probabilities_come_with_their_labels(served: Served) -> None:
    body = predict(served.client, "/models/iris/predict", IRIS_ROWS, probabilities=True)
    model = served.models["iris_v110"]
    assert body["classes"] == [0, 1, 2]
    assert np.allclose(body["probabilities"], model.predict_proba(IRIS_ROWS), rtol=1e-12, atol=0)


def test_a_single_row_may_leave_out_the_outer_list(served: Served) -> None:
    body = predict(served.client, "/models/iris/predict", IRIS_ROWS[1])
    assert body["outputs"] == served.models["iris_v110"].predict(IRIS_ROWS[1:2]).tolist()


def test_the_joblib_regressor_predicts_like_in_process(served: Served) -> None:
    body = predict(served.client, "/models/reg/predict", REGRESSION_ROWS)
    assert body["version"] == "1.0.0"
    assert np.allclose(body["outputs"], served.models["reg"].predict(REGRESSION_ROWS), rtol=1e-12, atol=0)


def test_concurrent_requests_to_a_batching_model_each_get_their_own_rows(served: Served) -> None:
    rng = np.random.default_rng(7)
    requests = [rng.random((1 + index % 3, 5)).round(6).tolist() for index in range(48)]

    def call(rows: list[list[float]]) -> list[float]:
        with served.server.client() as client:
            return predict(client, "/models/reg/predict", rows)["outputs"]  # type: ignore[no-any-return]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, requests))
    for rows, outputs in zip(requests, answers, strict=True):
        assert np.allclose(outputs, served.models["reg"].predict(rows), rtol=1e-12, atol=0)


def test_the_cloudpickle_text_pipeline_takes_strings(served: Served) -> None:
    pipeline = served.models["text"]
    body = predict(served.client, "/models/text/predict", TEXTS, probabilities=True)
    assert body["outputs"] == pipeline.predict(TEXTS).tolist()
    assert body["classes"] == ["neg", "pos"]
    assert np.allclose(body["probabilities"], pipeline.predict_proba(TEXTS), rtol=1e-12, atol=0)
    assert predict(served.client, "/models/text/predict", TEXTS[0])["outputs"] == pipeline.predict(TEXTS[:1]).tolist()


def test_the_onnx_model_predicts_like_onnxruntime_in_process(served: Served) -> None:
    labels, probabilities = onnx_run(served.onnx, ONNX_ROWS)
    body = predict(served.client, "/models/onnx_clf/predict", ONNX_ROWS, probabilities=True)
    assert body["outputs"] == labels
    assert body["classes"] == [0, 1]
    expected = [[row[label] for label in (0, 1)] for row in probabilities]
    assert np.allclose(body["probabilities"], expected, rtol=1e-6, atol=0)


def test_the_custom_model_gets_its_json_unchanged(served: Served) -> None:
    body = predict(served.client, "/models/custom/predict", [1, 2.5, -4])
    assert body == {"model": "custom", "version": "1.0.0", "outputs": [3.0, 7.5, -12.0]}


def test_a_pinned_version_is_served_beside_the_aspired_one(served: Served) -> None:
    old, new = served.models["iris"], served.models["iris_v110"]
    pinned = predict(served.client, "/models/iris/versions/1.0.0/predict", IRIS_ROWS, probabilities=True)
    current = predict(served.client, "/models/iris/versions/1.1.0/predict", IRIS_ROWS, probabilities=True)
    assert (pinned["version"], current["version"]) == ("1.0.0", "1.1.0")
    assert np.allclose(pinned["probabilities"], old.predict_proba(IRIS_ROWS), rtol=1e-12, atol=0)
    assert np.allclose(current["probabilities"], new.predict_proba(IRIS_ROWS), rtol=1e-12, atol=0)
    assert not np.allclose(pinned["probabilities"], current["probabilities"])


def test_models_lists_every_model_with_its_served_version(served: Served) -> None:
    response = served.client.get("/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert list(models) == ["custom", "iris", "onnx_clf", "reg", "text"]
    assert {name: m["served_version"] for name, m in models.items()} == {
        "custom": "1.0.0",
        "iris": "1.1.0",
        "onnx_clf": "1.0.0",
        "reg": "1.0.0",
        "text": "1.0.0",
    }
    assert all(m["ready"] for m in models.values())


def test_one_model_describes_each_version_state_schema_and_example(served: Served) -> None:
    model = served.client.get("/models/iris").json()
    assert model["framework"] == "scikit-learn"
    assert model["servable"] == "tabular"
    assert model["example"] == IRIS_ROWS[:1]
    assert model["input_schema"]["items"]["minItems"] == 4
    assert model["classes"] == [0, 1, 2]
    states = {v["version"]: (v["state"], v["loaded"]) for v in model["versions"]}
    assert states == {"1.0.0": ("AVAILABLE", True), "1.1.0": ("AVAILABLE", True)}


@pytest.mark.parametrize(
    ("name", "framework", "servable"),
    [("reg", "scikit-learn", "tabular"), ("text", "scikit-learn", "text_input"), ("onnx_clf", "onnx", "tabular")],
)
def test_each_loader_reports_its_framework_and_servable(
    served: Served, name: str, framework: str, servable: str
) -> None:
    model = served.client.get(f"/models/{name}").json()
    assert (model["framework"], model["servable"]) == (framework, servable)
    assert [v["state"] for v in model["versions"]] == ["AVAILABLE"]


def test_the_custom_model_reports_its_framework(served: Served) -> None:
    model = served.client.get("/models/custom").json()
    assert (model["framework"], model["servable"], model["classes"]) == ("custom", "custom", None)


def test_docs_page_is_served(served: Served) -> None:
    assert served.client.get("/docs").status_code == 200
