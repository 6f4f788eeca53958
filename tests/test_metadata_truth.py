"""The v2 and TF Serving metadata of every loader and servable say what infer really returns: the
datatype and shape of each output were recorded from a real prediction of the example at add time
(cluster ids, -1/1 outliers, string labels, multi-output regressors, probabilities). Without an
example, only what the model itself says is declared; the rest is unknown, never guessed."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from factories import (
    IRIS_ROWS,
    TABLE_COLUMNS,
    TABLE_RECORD,
    TEXTS,
    iris_classifier,
    save_cloudpickle,
    save_joblib,
    save_onnx,
    save_pickle,
    table_pipeline,
    text_pipeline,
)
from projects import Project
from server_support import running_server
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.multioutput import MultiOutputRegressor

from amms_cli.http.routes.tfserving import TF_DTYPES

ROWS = [[0.1, 0.9, 0.3, 0.4], [0.8, 0.1, 0.5, 0.2]]
CLASS_IDS_PY = textwrap.dedent(
    """\
    class Model:
        def load(self, path):
            pass

        def predict(self, inputs):
            return [int(value > 1) for value in inputs]
    """
)


@dataclass(frozen=True)
class Case:
    name: str
    save: Any  # (folder) -> path of what add-model takes
    example: Any
    options: tuple[str, ...] = ()


def _iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)  # type: ignore[no-any-return]


def _named_labels(folder: Path) -> Path:
    features, labels = _iris()
    names = np.array(["setosa", "versicolor", "virginica"])[labels]
    return save_pickle(folder / "named.pkl", LogisticRegression(max_iter=1000).fit(features, names))


def _kmeans(folder: Path) -> Path:
    return save_joblib(folder / "kmeans.joblib", KMeans(n_clusters=3, n_init=2, random_state=0).fit(_iris()[0]))


def _outliers(folder: Path) -> Path:
    return save_pickle(folder / "outliers.pkl", IsolationForest(random_state=0).fit(_iris()[0]))


def _two_targets(folder: Path) -> Path:
    features, labels = _iris()
    targets = np.column_stack([labels, features[:, 0]])
    return save_joblib(folder / "two.joblib", MultiOutputRegressor(LinearRegression()).fit(features, targets))


def _custom(folder: Path) -> Path:
    folder = folder / "class_ids"
    folder.mkdir()
    (folder / "model.py").write_text(CLASS_IDS_PY)
    return folder


def _table(folder: Path) -> Path:
    return save_joblib(folder / "table.joblib", table_pipeline())


CASES = [
    Case("iris", lambda folder: save_pickle(folder / "iris.pkl", iris_classifier()), IRIS_ROWS[:1]),
    Case("string_labels", _named_labels, IRIS_ROWS[:1]),
    Case("clusters", _kmeans, IRIS_ROWS[:1]),
    Case("outliers", _outliers, IRIS_ROWS[:1]),
    Case("two_targets", _two_targets, IRIS_ROWS[:1]),
    Case("two_targets_ndarray", _two_targets, IRIS_ROWS[:1], ("--servable", "ndarray")),
    Case("text", lambda folder: save_cloudpickle(folder / "text.pkl", text_pipeline()), TEXTS[:1]),
    Case("onnx", lambda folder: save_onnx(folder / "clf.onnx"), ROWS),
    Case("class_ids", _custom, [1, 2, 3]),
    Case("table", _table, [TABLE_RECORD]),
]
UNCHECKED = ["iris_bare", "two_targets_bare"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("truth")
    project = Project.init(folder / "proj")
    for case in CASES:
        project.add(case.save(folder), case.name, *case.options, example=case.example)
    project.add(save_pickle(folder / "bare.pkl", iris_classifier()), "iris_bare")
    project.add(_two_targets(folder), "two_targets_bare")
    with running_server(project.config) as server, server.client() as client:
        yield client


def v2_inputs(case: Case) -> dict[str, Any]:
    """The example as a v2 request (one typed tensor, or one per column)."""
    if case.name == "table":
        columns = [
            {"name": name, "datatype": datatype, "shape": [1], "data": [TABLE_RECORD[name]]}
            for name, datatype in zip(TABLE_COLUMNS, ["BYTES", "INT64", "FP64", "BOOL"], strict=True)
        ]
        return {"parameters": {"content_type": "pd"}, "inputs": columns}
    array = np.asarray(case.example)
    datatype = {"U": "BYTES", "i": "INT64"}.get(array.dtype.kind, "FP64")
    data = array.reshape(-1).tolist()
    return {"inputs": [{"name": "input", "shape": list(array.shape), "datatype": datatype, "data": data}]}


def batch_free(shape: list[int]) -> list[int]:
    return [-1, *shape[1:]]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_v2_metadata_equals_what_infer_returns(client: httpx.Client, case: Case) -> None:
    declared = {output["name"]: output for output in client.get(f"/v2/models/{case.name}").json()["outputs"]}
    request = v2_inputs(case) | {"outputs": [{"name": name} for name in declared]}
    response = client.post(f"/v2/models/{case.name}/infer", json=request)
    assert response.status_code == 200, response.text
    returned = {output["name"]: output for output in response.json()["outputs"]}
    assert set(returned) == set(declared)
    for name, output in returned.items():
        assert (output["datatype"], batch_free(output["shape"])) == (
            declared[name]["datatype"],
            declared[name]["shape"],
        )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_tf_serving_metadata_equals_what_predict_returns(client: httpx.Client, case: Case) -> None:
    signatures = client.get(f"/v1/models/{case.name}/metadata").json()["metadata"]["signature_def"]["signature_def"]
    for signature, key in (("serving_default", "predictions"), ("predict_proba", "probabilities")):
        if signature not in signatures:
            continue
        declared = signatures[signature]["outputs"][key]
        body = {"instances": case.example, "signature_name": signature}
        response = client.post(f"/v1/models/{case.name}:predict", json=body)
        assert response.status_code == 200, response.text
        values = np.asarray(response.json()["predictions"], dtype=object)
        dims = [int(dim["size"]) for dim in declared["tensor_shape"]["dim"]]
        assert dims == batch_free(list(values.shape))
        kind = _v2_datatype(response.json()["predictions"])
        assert declared["dtype"] == TF_DTYPES[kind]


def _v2_datatype(values: Any) -> str:
    array = np.asarray(values)
    return {"b": "BOOL", "i": "INT64", "f": "FP64"}.get(array.dtype.kind, "BYTES")


def test_the_recorded_outputs_of_the_notable_cases(client: httpx.Client) -> None:
    def outputs(name: str) -> dict[str, tuple[str, list[int]]]:
        body = client.get(f"/v2/models/{name}").json()
        return {output["name"]: (output["datatype"], output["shape"]) for output in body["outputs"]}

    assert outputs("clusters") == {"predict": ("INT64", [-1])}  # KMeans returns int32 ids
    assert outputs("outliers") == {"predict": ("INT64", [-1])}  # -1 and 1
    assert outputs("string_labels")["predict"] == ("BYTES", [-1])
    assert outputs("two_targets") == {"predict": ("FP64", [-1, 2])}
    assert outputs("two_targets_ndarray") == {"predict": ("FP64", [-1, 2])}
    assert outputs("onnx")["predict"] == ("INT64", [-1])
    assert outputs("class_ids") == {"predict": ("INT64", [-1])}
    assert outputs("table") == {"predict": ("BYTES", [-1]), "predict_proba": ("FP64", [-1, 2])}


def test_without_an_example_only_what_the_model_says_is_declared(client: httpx.Client) -> None:
    classifier = client.get("/v2/models/iris_bare").json()["outputs"]
    assert classifier == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},  # its classes_ are integers
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert client.get("/v2/models/two_targets_bare").json()["outputs"] == []
    signature = client.get("/v1/models/two_targets_bare/metadata").json()["metadata"]["signature_def"]
    unknown = signature["signature_def"]["serving_default"]["outputs"]["predictions"]
    assert (unknown["dtype"], unknown["tensor_shape"]) == ("DT_INVALID", {"dim": [], "unknown_rank": True})
    body = client.post(
        "/v2/models/iris_bare/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROWS[0]}]},
    )
    assert body.json()["outputs"][0]["datatype"] == "INT64"


def test_unchecked_models_are_named_in_the_status(client: httpx.Client) -> None:
    checks = {name: client.get(f"/models/{name}").json()["smoke_check"] for name in UNCHECKED}
    assert checks == dict.fromkeys(UNCHECKED, False)
    assert json.loads(client.get("/models/iris").text)["smoke_check"] is True
