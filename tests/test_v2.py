"""End to end: the Open Inference Protocol (v2) of a real `amms serve` process, JSON and binary tensors."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from factories import IRIS_ROWS, ONNX_ROWS, REGRESSION_ROWS, TEXTS
from protocol_models import FEATURES, Served, named_predict, protocol_repository, request_counts, served_repository
from server_support import running_server, wait_until

BODY_LIMIT = int(0.01 * 1024 * 1024)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_repository(tmp_path_factory, "--body-limit-mib", "0.01") as served:
        yield served


def fp64(rows: Any, name: str = "input") -> dict[str, Any]:
    array = np.asarray(rows, dtype=float)
    return {"name": name, "shape": list(array.shape), "datatype": "FP64", "data": array.reshape(-1).tolist()}


def infer(client: httpx.Client, path: str, inputs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = client.post(f"/v2/models/{path}/infer", json={"inputs": inputs, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def outputs(body: dict[str, Any]) -> dict[str, Any]:
    return {output["name"]: output for output in body["outputs"]}


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


# ---- server and model metadata, health ------------------------------------------------------------


def test_server_metadata_names_the_binary_extension(served: Served) -> None:
    body = served.client.get("/v2").json()
    assert body["name"] == "amms" and body["extensions"] == ["binary_tensor_data"] and body["version"]


def test_health(served: Served) -> None:
    assert served.client.get("/v2/health/live").json() == {"live": True}
    assert served.client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize(
    ("model", "inputs", "predict"),
    [
        ("iris", [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}], {"datatype": "INT64", "shape": [-1]}),
        ("reg", [{"name": "input", "datatype": "FP64", "shape": [-1, 5]}], {"datatype": "FP64", "shape": [-1]}),
        ("text", [{"name": "input", "datatype": "BYTES", "shape": [-1]}], {"datatype": "BYTES", "shape": [-1]}),
        ("onnx_clf", [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}], {"datatype": "INT64", "shape": [-1]}),
        ("custom", [{"name": "input", "datatype": "INT64", "shape": [-1]}], {"datatype": "FP64", "shape": [-1]}),
        ("named", [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}], {"datatype": "FP64", "shape": [-1]}),
    ],
)
def test_model_metadata_describes_inputs_and_outputs(
    served: Served, model: str, inputs: list[dict[str, Any]], predict: dict[str, Any]
) -> None:
    body = served.client.get(f"/v2/models/{model}").json()
    assert body["name"] == model and body["inputs"] == inputs
    assert body["outputs"][0] == {"name": "predict", **predict}


def test_metadata_lists_the_loaded_versions_and_probabilities(served: Served) -> None:
    body = served.client.get("/v2/models/iris").json()
    assert body["versions"] == ["1.0.0", "1.1.0"] and body["platform"] == "scikit-learn"
    assert body["properties"] == {"version": "1.1.0", "servable": "tabular"}
    assert body["outputs"][1] == {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}
    assert served.client.get("/v2/models/iris/versions/1.0.0").json()["properties"]["version"] == "1.0.0"
    assert [o["name"] for o in served.client.get("/v2/models/reg").json()["outputs"]] == ["predict"]


def test_readiness_of_models_and_versions(served: Served) -> None:
    client = served.client
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/1.0.0/ready").status_code == 200
    assert "checksum mismatch" in error(client.get("/v2/models/iris/versions/1.2.0/ready"), 503)
    assert "no loaded version 9.9.9" in error(client.get("/v2/models/iris/versions/9.9.9/ready"), 404)
    assert "model 'nope' not found (models: " in error(client.get("/v2/models/nope/ready"), 404)


def test_metadata_of_unknown_models_and_versions_is_a_404(served: Served) -> None:
    assert "model 'nope' not found" in error(served.client.get("/v2/models/nope"), 404)
    assert "(loaded: 1.0.0, 1.1.0)" in error(served.client.get("/v2/models/iris/versions/1.2.0"), 404)


# ---- inference, JSON ------------------------------------------------------------------------------


def test_the_pickle_classifier_predicts_like_in_process(served: Served) -> None:
    body = infer(served.client, "iris", [fp64(IRIS_ROWS)], id="req-7")
    expected = served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()
    assert body["model_name"] == "iris" and body["model_version"] == "1.1.0" and body["id"] == "req-7"
    assert body["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [3], "data": expected}]


def test_a_version_in_the_path_uses_that_version(served: Served) -> None:
    body = infer(served.client, "iris/versions/1.0.0", [fp64(IRIS_ROWS)])
    assert body["model_version"] == "1.0.0" and "id" not in body
    assert outputs(body)["predict"]["data"] == served.repository.model("iris_v100").predict(IRIS_ROWS).tolist()


def test_probabilities_come_as_a_second_output_with_their_classes(served: Served) -> None:
    body = infer(served.client, "iris", [fp64(IRIS_ROWS)], outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    model = served.repository.model("iris_v110")
    proba = body["outputs"][0]
    assert [o["name"] for o in body["outputs"]] == ["predict_proba", "predict"]
    assert proba["shape"] == [3, 3] and proba["parameters"] == {"classes": "[0,1,2]"}
    assert np.allclose(np.reshape(proba["data"], proba["shape"]), model.predict_proba(IRIS_ROWS))


def test_the_joblib_regressor_predicts_like_in_process(served: Served) -> None:
    body = infer(served.client, "reg", [fp64(REGRESSION_ROWS)])
    expected = served.repository.model("reg").predict(REGRESSION_ROWS)
    assert outputs(body)["predict"]["datatype"] == "FP64"
    assert np.allclose(outputs(body)["predict"]["data"], expected)


def test_the_text_pipeline_takes_bytes_tensors(served: Served) -> None:
    expected = served.repository.model("text").predict(TEXTS).tolist()
    flat = infer(served.client, "text", [{"name": "input", "shape": [3], "datatype": "BYTES", "data": TEXTS}])
    assert outputs(flat)["predict"] == {"name": "predict", "datatype": "BYTES", "shape": [3], "data": expected}
    column = [{"name": "text", "shape": [3, 1], "datatype": "BYTES", "data": [[t] for t in TEXTS]}]
    assert outputs(infer(served.client, "text", column))["predict"]["data"] == expected


def test_the_onnx_model_predicts_like_onnxruntime(served: Served) -> None:
    session = served.repository.onnx_session()
    rows = np.asarray(ONNX_ROWS, dtype=np.float32)
    labels = session.run(None, {session.get_inputs()[0].name: rows})[0].tolist()
    tensor = {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": rows.reshape(-1).tolist()}
    assert outputs(infer(served.client, "onnx_clf", [tensor]))["predict"]["data"] == labels


def test_the_custom_model_gets_the_tensor_as_a_list(served: Served) -> None:
    tensor = {"name": "input", "shape": [2], "datatype": "INT64", "data": [1, 2]}
    assert outputs(infer(served.client, "custom", [tensor]))["predict"]["data"] == [3.0, 6.0]


def test_one_tensor_per_feature_is_mapped_by_name(served: Served) -> None:
    rows = np.asarray(IRIS_ROWS)
    columns = [fp64(rows[:, FEATURES.index(name)], name) for name in reversed(FEATURES)]
    by_name = outputs(infer(served.client, "named", columns))["predict"]["data"]
    by_rows = outputs(infer(served.client, "named", [fp64(IRIS_ROWS)]))["predict"]["data"]
    assert by_name == by_rows == named_predict(IRIS_ROWS)


def test_one_row_without_the_batch_dimension_is_accepted(served: Served) -> None:
    body = infer(served.client, "iris", [fp64(IRIS_ROWS[0])])
    assert outputs(body)["predict"]["data"] == served.repository.model("iris_v110").predict(IRIS_ROWS[:1]).tolist()


# ---- inference, binary tensor data ----------------------------------------------------------------


def binary_request(header: dict[str, Any], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    json_part = orjson.dumps(header)
    return json_part + b"".join(blobs), {"Inference-Header-Content-Length": str(len(json_part))}


def split_response(response: httpx.Response) -> tuple[dict[str, Any], bytes]:
    size = int(response.headers["inference-header-content-length"])
    return orjson.loads(response.content[:size]), response.content[size:]


def test_binary_inputs_and_binary_outputs(served: Served) -> None:
    rows = np.asarray(IRIS_ROWS, dtype=np.float64)
    header = {
        "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP64", "parameters": {"binary_data_size": 96}}],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_request(header, rows.tobytes())
    response = served.client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    meta, data = split_response(response)
    assert meta["outputs"][0] == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [3],
        "parameters": {"binary_data_size": 24},
    }
    assert np.frombuffer(data, "<i8").tolist() == served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()


def test_binary_text_in_and_per_output_binary_flags(served: Served) -> None:
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
    header = {
        "inputs": [{"name": "input", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}, {"name": "predict_proba"}],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_request(header, raw)
    meta, data = split_response(served.client.post("/v2/models/text/infer", content=body, headers=headers))
    model = served.repository.model("text")
    predict, proba = meta["outputs"]
    assert predict["data"] == model.predict(TEXTS).tolist() and "parameters" not in predict
    assert proba["parameters"]["binary_data_size"] == len(data) == 3 * 2 * 8
    assert np.allclose(np.frombuffer(data, "<f8").reshape(proba["shape"]), model.predict_proba(TEXTS))


def test_json_outputs_only_when_no_binary_output_is_asked(served: Served) -> None:
    rows = np.asarray(IRIS_ROWS, dtype=np.float32)
    header = {
        "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": 48}}]
    }
    body, headers = binary_request(header, rows.tobytes())
    response = served.client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["datatype"] == "INT64"


def test_a_gzip_body_is_accepted(served: Served) -> None:
    body = gzip.compress(orjson.dumps({"inputs": [fp64(IRIS_ROWS)]}))
    response = served.client.post("/v2/models/iris/infer", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text


# ---- errors ---------------------------------------------------------------------------------------

TEXT_BYTES = {"name": "input", "shape": [1], "datatype": "BYTES", "data": ["x"]}


@pytest.mark.parametrize(
    ("model", "request_body", "message"),
    [
        ("iris", {"inputs": [fp64([[1, 2, 3]])]}, "input 'input': expected FP64 of shape [-1, 4], got shape [1, 3]"),
        ("iris", {"inputs": [TEXT_BYTES]}, "input 'input': expected FP64 of shape [-1, 4], got BYTES"),
        ("text", {"inputs": [fp64([1.0])]}, "input 'input': expected BYTES of shape [-1], got FP64"),
        ("iris", {"inputs": [{**fp64(IRIS_ROWS), "shape": [2, 4]}]}, "shape [2, 4] needs 8 values, got 12"),
        ("iris", {"inputs": [{**fp64([[1, 2, 3, 4]]), "datatype": "INT64"}]}, "INT64 data must be integers"),
        ("iris", {"inputs": [fp64(np.zeros((0, 4)))]}, "input 'input' has no elements (shape [0, 4])"),
        ("iris", {"inputs": [fp64([[1, 2, 3, 4]])], "outputs": [{"name": "x"}]}, "unknown output 'x'"),
        ("reg", {"inputs": [fp64([[1] * 5])], "outputs": [{"name": "predict_proba"}]}, "(model 'reg' has: predict)"),
        ("iris", {"inputs": [fp64([[1, 2, 3, 4]]), fp64([1], "b")]}, "model 'iris' takes one input tensor, got 2"),
        ("named", {"inputs": [fp64([1], "sepal_length"), fp64([1, 2], "petal_width")]}, "missing column"),
        ("named", {"inputs": [fp64([[1, 2]], n) for n in FEATURES]}, "expected a column of shape [-1]"),
        ("iris", {"inputs": [fp64([[1, 2, 3, 4]])], "id": 7}, "'id' must be a string"),
        ("iris", {"inputs": [fp64([[1, 2, 3, 4]])], "parameters": {"binary_data_output": 1}}, "must be true or false"),
        (
            "iris",
            {"inputs": [fp64([[1, 2, 3, 4]])], "outputs": [{"name": "predict", "parameters": {"classification": 2}}]},
            "classification parameter is not supported",
        ),
        ("iris", {"input": []}, "the inference request needs 'inputs'"),
        ("iris", [], "the inference request must be a JSON object"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(served: Served, model: str, request_body: Any, message: str) -> None:
    assert message in error(served.client.post(f"/v2/models/{model}/infer", json=request_body), 400)


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b"{not json", {}, "malformed JSON"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, "Inference-Header-Content-Length"),
        (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, "not valid gzip data"),
        (b"{}", {"Content-Encoding": "br"}, "Content-Encoding 'br' is not supported"),
    ],
)
def test_malformed_bodies_are_400(served: Served, content: bytes, headers: dict[str, str], message: str) -> None:
    assert message in error(served.client.post("/v2/models/iris/infer", content=content, headers=headers), 400)


def test_undecodable_binary_text_is_400(served: Served) -> None:
    raw = struct.pack("<I", 2) + b"\xff\xfe"
    header = {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]}
    body, headers = binary_request(header, raw)
    message = error(served.client.post("/v2/models/text/infer", content=body, headers=headers), 400)
    assert message == "input 'input': BYTES element 0 is not UTF-8 text"


def test_unknown_models_and_versions_are_404(served: Served) -> None:
    body = {"inputs": [fp64([[1, 2, 3, 4]])]}
    assert "model 'nope' not found" in error(served.client.post("/v2/models/nope/infer", json=body), 404)
    message = error(served.client.post("/v2/models/iris/versions/1.2.0/infer", json=body), 404)
    assert "FAILED" in message and "checksum mismatch" in message


def test_bodies_over_the_limit_are_413_even_when_compressed(served: Served) -> None:
    big = orjson.dumps({"inputs": [fp64(np.zeros((BODY_LIMIT // 8, 4)))]})
    assert "over the limit" in error(served.client.post("/v2/models/iris/infer", content=big), 413)
    bomb = gzip.compress(big)
    assert len(bomb) < BODY_LIMIT
    response = served.client.post("/v2/models/iris/infer", content=bomb, headers={"Content-Encoding": "gzip"})
    assert "decompressed request body is over the limit" in error(response, 413)


def test_requests_are_counted_under_the_v2_protocol(served: Served) -> None:
    before = request_counts(served.client).get(("reg", "1.0.0", "v2", "200"), 0.0)
    infer(served.client, "reg", [fp64(REGRESSION_ROWS)])
    served.client.post("/v2/models/iris/infer", json={"inputs": []})
    counts = request_counts(served.client)
    assert counts[("reg", "1.0.0", "v2", "200")] == before + 1
    assert any(key[0] == "iris" and key[2:] == ("v2", "400") for key in counts)  # bad requests count too


def test_the_routes_are_documented(served: Served) -> None:
    paths = served.client.get("/openapi.json").json()["paths"]
    infer_doc = paths["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert infer_doc["requestBody"]["content"]["application/json"]["example"]["inputs"][0]["datatype"] == "FP64"
    assert {"/v2", "/v2/health/ready", "/v2/models/{name}/ready", "/v2/models/{name}"} <= set(paths)


def test_while_a_model_loads_it_is_not_ready(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The custom model.py sleeps in load() when AMMS_TEST_LOAD_SLEEP is set (on the server only)."""
    repository = protocol_repository(tmp_path_factory)
    env = {"AMMS_TEST_LOAD_SLEEP": "6"}
    with running_server(repository.config, env=env, ready=False) as server, server.client() as client:

        def custom_is_loading() -> bool:
            statuses = client.get("/v1/models/custom").json()["model_version_status"]
            return [s["state"] for s in statuses] == ["LOADING"]

        assert wait_until(custom_is_loading, timeout=30)
        assert client.get("/v2/health/ready").status_code == 503
        assert error(client.get("/v2/models/custom/ready"), 503) == "model 'custom' has no available version (loading)"
        body = {"inputs": [{"name": "input", "shape": [1], "datatype": "INT64", "data": [1]}]}
        assert "loading" in error(client.post("/v2/models/custom/infer", json=body), 503)
        assert client.get("/v2/models/iris/ready").status_code == 200
