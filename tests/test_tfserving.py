"""End to end: the TensorFlow Serving REST API of a real `amms serve` process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from factories import IRIS_ROWS, ONNX_ROWS, REGRESSION_ROWS, TEXTS
from protocol_models import FEATURES, Served, named_predict, request_counts, served_repository


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_repository(tmp_path_factory, "--body-limit-mib", "0.01") as served:
        yield served


def predict(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/v1/models/{path}:predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


# ---- predict --------------------------------------------------------------------------------------


def test_row_format_gives_predictions(served: Served) -> None:
    expected = served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()
    assert predict(served.client, "iris", {"instances": IRIS_ROWS}) == {"predictions": expected}


def test_columnar_format_gives_outputs(served: Served) -> None:
    expected = served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()
    assert predict(served.client, "iris", {"inputs": IRIS_ROWS}) == {"outputs": expected}
    assert predict(served.client, "iris", {"inputs": {"input": IRIS_ROWS}}) == {"outputs": expected}


def test_a_semver_version_in_the_path(served: Served) -> None:
    expected = served.repository.model("iris_v100").predict(IRIS_ROWS).tolist()
    assert predict(served.client, "iris/versions/1.0.0", {"instances": IRIS_ROWS}) == {"predictions": expected}


def test_the_predict_proba_signature_gives_probabilities(served: Served) -> None:
    body = predict(served.client, "iris", {"signature_name": "predict_proba", "instances": IRIS_ROWS})
    assert np.allclose(body["predictions"], served.repository.model("iris_v110").predict_proba(IRIS_ROWS))
    default = predict(served.client, "iris", {"signature_name": "serving_default", "instances": IRIS_ROWS})
    assert default == {"predictions": served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()}


def test_the_joblib_regressor(served: Served) -> None:
    body = predict(served.client, "reg", {"instances": REGRESSION_ROWS})
    assert np.allclose(body["predictions"], served.repository.model("reg").predict(REGRESSION_ROWS))


def test_the_text_pipeline(served: Served) -> None:
    expected = served.repository.model("text").predict(TEXTS).tolist()
    assert predict(served.client, "text", {"instances": TEXTS}) == {"predictions": expected}
    assert predict(served.client, "text", {"inputs": {"text": TEXTS}}) == {"outputs": expected}


def test_the_onnx_model(served: Served) -> None:
    session = served.repository.onnx_session()
    rows = np.asarray(ONNX_ROWS, dtype=np.float32)
    labels = session.run(None, {session.get_inputs()[0].name: rows})[0].tolist()
    assert predict(served.client, "onnx_clf", {"instances": ONNX_ROWS}) == {"predictions": labels}


def test_the_custom_model_gets_the_json_unchanged(served: Served) -> None:
    assert predict(served.client, "custom", {"instances": [1, 2]}) == {"predictions": [3.0, 6.0]}


def test_columns_by_feature_name_are_mapped_to_records(served: Served) -> None:
    rows = np.asarray(IRIS_ROWS)
    columns = {name: rows[:, FEATURES.index(name)].tolist() for name in reversed(FEATURES)}
    assert predict(served.client, "named", {"inputs": columns}) == {"outputs": named_predict(IRIS_ROWS)}
    records = [dict(zip(FEATURES, row, strict=True)) for row in IRIS_ROWS]
    assert predict(served.client, "named", {"instances": records}) == {"predictions": named_predict(IRIS_ROWS)}


# ---- status and metadata --------------------------------------------------------------------------


def test_status_lists_every_version_with_its_state(served: Served) -> None:
    statuses = served.client.get("/v1/models/iris").json()["model_version_status"]
    ok = {"error_code": "OK", "error_message": ""}
    assert statuses[:2] == [
        {"version": "1.0.0", "state": "AVAILABLE", "status": ok},
        {"version": "1.1.0", "state": "AVAILABLE", "status": ok},
    ]
    failed = statuses[2]
    assert (failed["version"], failed["state"], failed["status"]["error_code"]) == ("1.2.0", "END", "UNKNOWN")
    assert "checksum mismatch" in failed["status"]["error_message"]


def test_status_of_one_version(served: Served) -> None:
    body = served.client.get("/v1/models/iris/versions/1.1.0").json()
    assert [s["version"] for s in body["model_version_status"]] == ["1.1.0"]
    message = error(served.client.get("/v1/models/iris/versions/9.9.9"), 404)
    assert message == "model 'iris' has no version 9.9.9 (versions: 1.0.0, 1.1.0, 1.2.0)"
    assert "model 'nope' not found" in error(served.client.get("/v1/models/nope"), 404)


def test_metadata_describes_the_signatures(served: Served) -> None:
    body = served.client.get("/v1/models/iris/metadata").json()
    assert body["model_spec"] == {"name": "iris", "signature_name": "", "version": "1.1.0"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["predict_proba", "serving_default"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["input"]["dtype"] == "DT_DOUBLE"
    assert [d["size"] for d in default["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "4"]
    assert default["outputs"]["predictions"]["dtype"] == "DT_INT64"
    assert signatures["predict_proba"]["outputs"]["probabilities"]["dtype"] == "DT_DOUBLE"


def test_metadata_of_other_models_and_versions(served: Served) -> None:
    named = served.client.get("/v1/models/named/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert sorted(named["serving_default"]["inputs"]) == sorted(FEATURES)
    text = served.client.get("/v1/models/text/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert text["serving_default"]["inputs"]["input"]["dtype"] == "DT_STRING"
    old = served.client.get("/v1/models/iris/versions/1.0.0/metadata").json()
    assert old["model_spec"]["version"] == "1.0.0"
    assert "FAILED" in error(served.client.get("/v1/models/iris/versions/1.2.0/metadata"), 404)


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("iris", {"instances": [[1, 2, 3]]}, "inputs: expected 4 features per row, got 3"),
        ("iris", {"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, "give either 'instances'"),
        ("iris", {"signature_name": "serving_default"}, "give either 'instances'"),
        ("iris", {"instances": [[1, 2, 3, 4]], "examples": []}, "unknown field 'examples'"),
        ("iris", {"instances": [[1, 2, 3, 4]], "signature_name": "x"}, "unknown signature_name 'x'"),
        ("reg", {"instances": [[1] * 5], "signature_name": "predict_proba"}, "(model 'reg' has: serving_default)"),
        ("iris", {"inputs": {"a": [1], "b": [2]}}, "takes one input tensor, got 2 named ones"),
        ("named", {"inputs": {"sepal_length": [1]}}, "inputs: missing column 'sepal_width'"),
        ("named", {"inputs": {name: [1] for name in FEATURES} | {"petal_width": [1, 2]}}, "column 'petal_width' has 2"),
        ("text", {"instances": [1, 2]}, "inputs[0]: expected a string, got int"),
        ("iris", {"instances": [["a", "b", "c", "d"]]}, "inputs: expected numbers, got strings"),
        ("iris", {"instances": []}, "empty input"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(served: Served, model: str, body: Any, message: str) -> None:
    assert message in error(served.client.post(f"/v1/models/{model}:predict", json=body), 400)


def test_malformed_json_is_400(served: Served) -> None:
    assert "malformed JSON" in error(served.client.post("/v1/models/iris:predict", content=b"{"), 400)
    assert "must be a JSON object" in error(served.client.post("/v1/models/iris:predict", json=[1]), 400)


def test_unknown_models_and_versions_are_404(served: Served) -> None:
    body = {"instances": IRIS_ROWS}
    assert "model 'nope' not found" in error(served.client.post("/v1/models/nope:predict", json=body), 404)
    assert "no loaded version 2.0.0" in error(
        served.client.post("/v1/models/iris/versions/2.0.0:predict", json=body), 404
    )


def test_bodies_over_the_limit_are_413(served: Served) -> None:
    body = {"instances": np.zeros((2000, 4)).tolist()}
    assert "over the limit" in error(served.client.post("/v1/models/iris:predict", json=body), 413)


def test_requests_are_counted_under_the_tfserving_protocol(served: Served) -> None:
    before = request_counts(served.client).get(("reg", "1.0.0", "tfserving", "200"), 0.0)
    predict(served.client, "reg", {"instances": REGRESSION_ROWS})
    served.client.post("/v1/models/reg:predict", json={"instances": [[1]]})
    counts = request_counts(served.client)
    assert counts[("reg", "1.0.0", "tfserving", "200")] == before + 1
    assert counts[("reg", "1.0.0", "tfserving", "400")] >= 1


def test_the_routes_are_documented(served: Served) -> None:
    paths = served.client.get("/openapi.json").json()["paths"]
    assert "instances" in str(paths["/v1/models/{name}:predict"]["post"]["requestBody"])
    assert {"/v1/models/{name}/versions/{version}:predict", "/v1/models/{name}/metadata"} <= set(paths)
