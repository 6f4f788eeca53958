"""A scikit-learn pipeline fitted on a pandas DataFrame (strings, integers, floats with missing values,
booleans), published with and without an example and served through every protocol: each answer
equals the pipeline's own predict / predict_proba on the same DataFrame, and bad input gets a 4xx
naming the column, the row and what was expected."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from factories import TABLE_COLUMNS, TABLE_RECORD, imputing_pipeline, save_joblib, table, table_pipeline
from projects import Project
from server_support import metric_values, running_server
from sklearn.pipeline import Pipeline

RECORDS = [
    {"city": "paris", "age": 30, "income": None, "member": True},
    {"member": False, "income": 1234.5, "age": 61, "city": "nice"},  # keys in another order
    {"city": "lyon", "age": 45, "income": 2800.0, "member": True},
]


def frame_of(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame a data scientist would build from these records, in the fitted column order."""
    return pd.DataFrame(records)[TABLE_COLUMNS]


@dataclass
class Served:
    client: httpx.Client
    url: str
    pipeline: Pipeline
    project: Project


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("tabular")
    pipeline = table_pipeline()
    artifact = folder / "pipeline.joblib"
    joblib.dump(pipeline, artifact)
    table().head(5).to_csv(folder / "sample.csv", index=False)
    project = Project.init(folder / "proj")
    project.add(artifact, "table", "--example", str(folder / "sample.csv"))
    project.add(artifact, "records", example=[TABLE_RECORD])
    project.add(artifact, "bare")
    project.add(save_joblib(folder / "imputing.joblib", imputing_pipeline()), "imputing")
    project.set_fields("records", max_batch_size=16, max_wait_ms=20)
    with running_server(project.config) as server, server.client() as client:
        yield Served(client, server.url, pipeline, project)


def predict(client: httpx.Client, model: str, inputs: Any, probabilities: bool = False) -> dict[str, Any]:
    response = client.post(f"/models/{model}/predict", json={"inputs": inputs, "probabilities": probabilities})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


# ---- what add-model records -----------------------------------------------------------------------


def test_add_model_picks_the_dataframe_servable_and_records_typed_columns(served: Served) -> None:
    manifest = served.project.manifest("table", "1.0.0")
    assert manifest["servable_name"] == "dataframe"
    assert "pandas" in manifest["requirements"]
    columns = {column["name"]: column for column in manifest["input"]["columns"]}
    assert list(columns) == TABLE_COLUMNS
    assert columns["city"] | {"dtype": None} == {
        "name": "city",
        "type": "category",
        "dtype": None,
        "nullable": False,
        "levels": ["lyon", "nice", "paris"],
        "closed": True,  # OneHotEncoder() raises on unknown values: refused before the model sees them
    }
    assert (columns["age"]["type"], columns["age"]["dtype"], columns["age"]["nullable"]) == ("int", "int64", True)
    assert (columns["income"]["type"], columns["income"]["nullable"]) == ("float", True)
    assert (columns["member"]["type"], columns["member"]["dtype"]) == ("bool", "bool")
    assert manifest["input"]["example"] == json.loads(table().head(2).to_json(orient="records"))
    assert manifest["outputs"] == {
        "predict": {"datatype": "BYTES", "shape": [-1]},
        "predict_proba": {"datatype": "FP64", "shape": [-1, 2]},
    }


def test_records_example_gives_the_kinds_of_its_values(served: Served) -> None:
    columns = {c["name"]: c for c in served.project.manifest("records", "1.0.0")["input"]["columns"]}
    assert columns["member"]["type"] == "bool"
    assert columns["age"]["type"] == "float"  # JSON cannot tell an integer column from a float one


def test_without_an_example_the_model_still_serves_unchecked_and_says_so(served: Served) -> None:
    manifest = served.project.manifest("bare", "1.0.0")
    assert (manifest["input"]["example"], manifest["outputs"]) == (None, {})
    assert [c["type"] for c in manifest["input"]["columns"]] == ["category", "float", "float", "any"]
    model = served.client.get("/models/bare").json()
    assert (model["served_version"], model["smoke_check"], model["example"]) == ("1.0.0", False, None)
    assert served.client.get("/models/table").json()["smoke_check"] is True
    expected = served.pipeline.predict(frame_of(RECORDS)).tolist()
    assert predict(served.client, "bare", RECORDS)["outputs"] == expected


# ---- the same predictions through every protocol ----------------------------------------------------


def test_records_with_nulls_and_keys_in_any_order_predict_like_the_pipeline(served: Served) -> None:
    body = predict(served.client, "table", RECORDS, probabilities=True)
    frame = frame_of(RECORDS)
    assert body["outputs"] == served.pipeline.predict(frame).tolist()
    assert np.allclose(body["probabilities"], served.pipeline.predict_proba(frame))
    assert body["classes"] == ["junior", "senior"]


def test_named_columns_and_one_record_predict_the_same(served: Served) -> None:
    columns = {name: [record[name] for record in RECORDS] for name in reversed(TABLE_COLUMNS)}
    expected = served.pipeline.predict(frame_of(RECORDS)).tolist()
    assert predict(served.client, "table", columns)["outputs"] == expected
    assert predict(served.client, "table", RECORDS[1])["outputs"] == expected[1:2]


def test_tf_serving_takes_instances_as_objects_and_inputs_as_columns(served: Served) -> None:
    expected = served.pipeline.predict(frame_of(RECORDS)).tolist()
    rows = served.client.post("/v1/models/table:predict", json={"instances": RECORDS}).json()
    assert rows == {"predictions": expected}
    columns = {name: [record[name] for record in RECORDS] for name in TABLE_COLUMNS}
    assert served.client.post("/v1/models/table:predict", json={"inputs": columns}).json() == {"outputs": expected}
    proba = served.client.post(
        "/v1/models/table:predict", json={"instances": RECORDS, "signature_name": "predict_proba"}
    )
    assert np.allclose(proba.json()["predictions"], served.pipeline.predict_proba(frame_of(RECORDS)))


def test_tritonclient_sends_one_tensor_per_column_with_bytes_and_missing_values(served: Served) -> None:
    client = triton.InferenceServerClient(url=served.url.removeprefix("http://"))
    try:
        frame = frame_of(RECORDS)
        inputs = []
        for name, datatype, values in (
            ("city", "BYTES", np.array(frame["city"].tolist(), dtype=object).reshape(-1, 1)),
            ("age", "INT64", frame["age"].to_numpy(dtype=np.int64)),
            ("income", "FP64", frame["income"].to_numpy(dtype=np.float64)),  # NaN travels in binary data
            ("member", "BOOL", frame["member"].to_numpy(dtype=bool)),
        ):
            tensor = triton.InferInput(name, list(values.shape), datatype)
            tensor.set_data_from_numpy(values, binary_data=True)
            inputs.append(tensor)
        wanted = [triton.InferRequestedOutput("predict"), triton.InferRequestedOutput("predict_proba")]
        result = client.infer("table", inputs, outputs=wanted)
        assert [label.decode() for label in result.as_numpy("predict")] == served.pipeline.predict(frame).tolist()
        assert np.allclose(result.as_numpy("predict_proba"), served.pipeline.predict_proba(frame))
        assert json.loads(result.get_output("predict_proba")["parameters"]["classes"]) == ["junior", "senior"]
    finally:
        client.close()


def test_v2_json_as_mlserver_pandas_codec_sends_it(served: Served) -> None:
    """The request body MLServer 1.7's PandasCodec.encode_request(df, use_bytes=False) produces."""
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": "city",
                "shape": [2, 1],
                "datatype": "BYTES",
                "parameters": {"content_type": "str"},
                "data": ["paris", "nice"],
            },
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [30, 61]},
            {"name": "income", "shape": [2, 1], "datatype": "FP64", "data": [None, 1234.5]},
            {"name": "member", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]},
        ],
    }
    response = served.client.post("/v2/models/table/infer", json=body)
    assert response.status_code == 200, response.text
    predict_output = response.json()["outputs"][0]
    expected = served.pipeline.predict(frame_of(RECORDS[:2])).tolist()
    assert predict_output == {"name": "predict", "datatype": "BYTES", "shape": [2], "data": expected}


def test_metadata_lists_one_typed_tensor_per_column_and_the_recorded_outputs(served: Served) -> None:
    v2 = served.client.get("/v2/models/table").json()
    assert v2["inputs"] == [
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]},
    ]
    assert v2["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]
    signature = served.client.get("/v1/models/table/metadata").json()["metadata"]["signature_def"]["signature_def"]
    inputs = signature["serving_default"]["inputs"]
    assert {name: spec["dtype"] for name, spec in inputs.items()} == {
        "city": "DT_STRING",
        "age": "DT_INT64",
        "income": "DT_DOUBLE",
        "member": "DT_BOOL",
    }


def test_every_column_is_documented_with_its_type_and_the_recorded_example(served: Served) -> None:
    operation = served.client.get("/openapi.json").json()["paths"]["/models/table/predict"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    records = content["schema"]["properties"]["inputs"]["anyOf"][0]
    properties = records["items"]["properties"]
    assert properties["city"] == {
        "enum": ["lyon", "nice", "paris"],
        "description": "category: one of ['lyon', 'nice', 'paris']",
    }
    assert properties["income"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert properties["income"]["description"] == "float, may be null (missing): a number"
    assert content["example"] == {"inputs": served.project.manifest("table", "1.0.0")["input"]["example"]}


def test_an_imputing_pipeline_on_rows_of_numbers_takes_null_as_missing(served: Served, tmp_path: Path) -> None:
    manifest = served.project.manifest("imputing", "1.0.0")
    assert (manifest["servable_name"], manifest["input"]["allows_missing"]) == ("tabular", True)
    rows = [[0.7, None, 0.1, 0.9], [0.2, 0.4, 0.3, 0.1]]
    expected = imputing_pipeline().predict(np.array(rows, dtype=float)).tolist()
    assert predict(served.client, "imputing", rows)["outputs"] == expected


def test_batched_requests_of_records_are_merged_and_answered_each_their_own(served: Served) -> None:
    """Concurrent requests to a batching model become one DataFrame per batch; each gets its own rows.
    Eight clients, connected first, start together and send three requests each, so requests arrive
    while a batch is running however loaded the machine is (new connections per request, on a busy
    test machine, could arrive one after another and never meet)."""
    clients = 8
    bodies = [[RECORDS[index % 3], RECORDS[(index + 1) % 3]] for index in range(24)]
    shares = [bodies[first::clients] for first in range(clients)]
    start_together = threading.Barrier(clients)

    def ask(share: list[list[dict[str, Any]]]) -> list[list[str]]:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            client.get("/health/live").raise_for_status()  # connected before the first prediction
            start_together.wait(timeout=30)
            return [predict(client, "records", records)["outputs"] for records in share]

    def batches() -> tuple[float, float]:
        text = served.client.get("/metrics").text
        count = metric_values(text, "amms_batch_size_rows_count", "model").get(("records",), 0.0)
        return count, metric_values(text, "amms_batch_size_rows_sum", "model").get(("records",), 0.0)

    calls_before, rows_before = batches()
    with ThreadPoolExecutor(clients) as pool:
        answered = list(pool.map(ask, shares))
    for share, answers in zip(shares, answered, strict=True):
        assert answers == [served.pipeline.predict(frame_of(records)).tolist() for records in share]
    calls, rows = batches()
    assert rows - rows_before == 48  # every row predicted once
    assert calls - calls_before < 24  # fewer model calls than requests: some were merged


# ---- bad input -------------------------------------------------------------------------------------


def record(**changes: Any) -> dict[str, Any]:
    return {**TABLE_RECORD, **changes}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([record(age="30")], "column 'age' row 0: expected an integer, got the string '30'"),
        ([record(), record(income="a lot")], "column 'income' row 1: expected a number, got the string 'a lot'"),
        ([record(city=3)], "column 'city' row 0: expected one of ['lyon', 'nice', 'paris'], got the number 3"),
        (
            [record(city="rome")],
            "column 'city' row 0: expected one of ['lyon', 'nice', 'paris'], got the string 'rome'",
        ),
        ([record(city=None)], "column 'city' row 0: null is not accepted (expected one of ['lyon', 'nice', 'paris'])"),
        ([record(member={"yes": True})], "column 'member' row 0: expected true or false, got an object"),
        (
            [{k: v for k, v in TABLE_RECORD.items() if k != "age"}],
            "inputs[0]: missing column 'age' (expected ['city', 'age', 'income', 'member'])",
        ),
        ([record(zip="75001")], "inputs[0]: unknown column 'zip' (expected ['city', 'age', 'income', 'member'])"),
        (
            {"city": ["paris", "nice"], "age": [30], "income": [1.0, 2.0], "member": [True, False]},
            "inputs: column 'age' has 1 values but 'city' has 2",
        ),
        ([["paris", 30, 1.0]], "inputs[0]: expected 4 values (columns ['city', 'age', 'income', 'member']), got 3"),
        ("paris", "inputs: expected records, named columns or rows, got the string 'paris'"),
    ],
)
def test_bad_values_name_the_column_the_row_and_the_expected_type(served: Served, inputs: Any, message: str) -> None:
    assert error(served.client.post("/models/table/predict", json={"inputs": inputs})) == message


def test_a_key_given_twice_is_refused(served: Served) -> None:
    body = b'{"inputs": [{"city": "paris", "age": 30, "age": 31, "income": null, "member": true}]}'
    response = served.client.post("/models/table/predict", content=body, headers={"content-type": "application/json"})
    assert error(response) == "the key 'age' is given twice in one object"


def test_ten_thousand_columns_are_one_short_error(served: Served) -> None:
    wide = record(**{f"extra_{index}": index for index in range(10_000)})
    message = error(served.client.post("/models/table/predict", json={"inputs": [wide]}))
    assert message == "inputs[0]: unknown column 'extra_0' (expected ['city', 'age', 'income', 'member'])"


def test_a_huge_string_is_over_the_body_limit_and_the_server_keeps_serving(served: Served) -> None:
    huge = record(city="x" * (100 * 1024 * 1024))
    response = served.client.post("/models/table/predict", json={"inputs": [huge]}, timeout=60)
    assert response.status_code == 413
    assert (
        predict(served.client, "table", [TABLE_RECORD])["outputs"]
        == served.pipeline.predict(frame_of([TABLE_RECORD])).tolist()
    )


def test_bad_requests_change_nothing_on_disk(served: Served) -> None:
    before = {path: path.read_bytes() for path in sorted(served.project.models.rglob("*")) if path.is_file()}
    served.client.post("/models/table/predict", json={"inputs": [record(city="rome")]})
    served.client.post(
        "/v2/models/table/infer", json={"inputs": [{"name": "city", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    )
    after = {path: path.read_bytes() for path in sorted(served.project.models.rglob("*")) if path.is_file()}
    assert after == before


def test_a_csv_example_that_is_not_csv_is_one_error_line(served: Served, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x00\x01\x02 not,a\ncsv")
    result = served.project.run(
        "add-model", str(served.project.root.parent / "pipeline.joblib"), "--name", "x", "--example", str(broken)
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
