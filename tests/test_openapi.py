"""The OpenAPI document: one predict operation per model, with the servable's schema and the recorded example."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from factories import IRIS_ROWS, TEXTS, custom_model_dir, iris_classifier, save_cloudpickle, save_pickle
from factories import text_pipeline as make_text_pipeline
from projects import Project
from server_support import running_server


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("openapi")
    project = Project.init(folder)
    project.add(save_pickle(folder / "iris.pkl", iris_classifier()), "iris", example=IRIS_ROWS[:1])
    project.add(save_cloudpickle(folder / "text.pkl", make_text_pipeline()), "text", example=TEXTS[:1])
    project.add(custom_model_dir(folder / "custom"), "custom")
    with running_server(project.config) as server, server.client() as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        yield response.json()


def request_content(document: dict[str, Any], name: str) -> dict[str, Any]:
    operation = document["paths"][f"/models/{name}/predict"]["post"]
    return operation["requestBody"]["content"]["application/json"]  # type: ignore[no-any-return]


def test_each_model_has_its_own_predict_operation(document: dict[str, Any]) -> None:
    per_model = sorted(path for path in document["paths"] if path.startswith("/models/") and "{" not in path)
    assert per_model == ["/models/custom/predict", "/models/iris/predict", "/models/text/predict"]
    operation = document["paths"]["/models/iris/predict"]["post"]
    assert operation["summary"] == "Predict with iris (serving 1.0.0, scikit-learn)"
    assert {"200", "400", "404", "413", "500", "503"} <= set(operation["responses"])


def test_a_tabular_model_documents_its_width_and_recorded_example(document: dict[str, Any]) -> None:
    content = request_content(document, "iris")
    inputs = content["schema"]["properties"]["inputs"]
    assert inputs["items"] == {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
    assert content["schema"]["required"] == ["inputs"]
    assert content["example"] == {"inputs": IRIS_ROWS[:1]}


def test_a_text_model_documents_strings_and_its_example(document: dict[str, Any]) -> None:
    content = request_content(document, "text")
    variants = content["schema"]["properties"]["inputs"]["anyOf"]
    assert {"type": "string"} in variants
    assert content["example"] == {"inputs": TEXTS[:1]}


def test_a_custom_model_without_example_has_a_generic_schema(document: dict[str, Any]) -> None:
    content = request_content(document, "custom")
    assert "description" in content["schema"]["properties"]["inputs"]
    assert "example" not in content


def test_the_protocol_routes_stay_generic(document: dict[str, Any]) -> None:
    assert "/models/{name}/predict" in document["paths"]
    assert "/models/{name}/versions/{version}/predict" in document["paths"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
