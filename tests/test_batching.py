"""End to end: adaptive batching in a real `amms serve` process, on a cloudpickled scikit-learn
pipeline that takes 30 ms a call and raises on rows with a negative value."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from factories import save_cloudpickle
from projects import Project
from server_support import ServerProcess, metric_values, running_server
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

CALL_SECONDS = 0.03
MAX_WAIT_MS = 1000  # long on purpose: a request that waited for it would be plain to see


def slow_checked_model() -> Pipeline:
    """30 ms a call, whatever the rows (like a forest's fixed cost); a negative value is refused."""

    def check(rows: np.ndarray) -> np.ndarray:
        time.sleep(CALL_SECONDS)
        if (np.asarray(rows) < 0).any():
            raise ValueError("negative feature")
        return rows

    features = np.random.default_rng(3).random((30, 3))
    pipeline = make_pipeline(FunctionTransformer(check), LinearRegression())
    return pipeline.fit(features, features @ [1.0, 2.0, 3.0])


@dataclass
class Served:
    server: ServerProcess
    model: Pipeline


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("batching")
    model = slow_checked_model()
    project = Project.init(folder)
    project.add(save_cloudpickle(folder / "slow.pkl", model), "slow", example=[[0.1, 0.2, 0.3]])
    project.set_fields("slow", max_batch_size=32, max_wait_ms=MAX_WAIT_MS)
    with running_server(project.config) as server:
        yield Served(server, model)


def post(client: httpx.Client, rows: list[list[float]]) -> httpx.Response:
    return client.post("/models/slow/predict", json={"inputs": rows})


def batch_sizes(client: httpx.Client) -> dict[str, float]:
    """The batch-size histogram of /metrics: bucket bounds (and 'count', 'sum') to values."""
    text = client.get("/metrics").text
    buckets = metric_values(text, "amms_batch_size_rows_bucket", "model", "le")
    found = {le: value for (model, le), value in buckets.items() if model == "slow"}
    for part in ("count", "sum"):
        totals = metric_values(text, f"amms_batch_size_rows_{part}", "model")
        if ("slow",) in totals:
            found[part] = totals[("slow",)]
    return found


def test_concurrent_requests_are_merged_and_one_bad_request_fails_alone(served: Served) -> None:
    rng = np.random.default_rng(11)
    requests = [rng.random((1 + index % 3, 3)).round(6).tolist() for index in range(24)]
    bad = {5, 13, 21}
    for index in bad:
        requests[index][0][1] = -1.0

    with served.server.client() as client:
        before = batch_sizes(client)

    def call(rows: list[list[float]]) -> httpx.Response:
        with served.server.client() as client:
            return post(client, rows)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(call, requests))

    for index, (rows, response) in enumerate(zip(requests, responses, strict=True)):
        if index in bad:
            assert response.status_code == 500, response.text
            assert re.match(
                r"the model raised ValueError while predicting \(error id [0-9a-f]{8}", response.json()["error"]
            )
        else:
            assert response.status_code == 200, response.text
            assert np.allclose(response.json()["outputs"], served.model.predict(rows), rtol=1e-12, atol=0)

    with served.server.client() as client:
        after = batch_sizes(client)
    batches = after["count"] - before.get("count", 0)
    single_row_batches = after["1.0"] - before.get("1.0", 0)
    assert after["sum"] - before.get("sum", 0) == sum(len(rows) for rows in requests)
    assert batches < len(requests) / 2, after  # 24 requests at 30 ms each: most must have been merged
    assert single_row_batches < batches, after


def test_a_lone_client_is_answered_at_once_not_after_max_wait_ms(served: Served) -> None:
    with served.server.client() as client:
        post(client, [[0.1, 0.2, 0.3]])  # warm
        for _ in range(5):
            started = time.perf_counter()
            response = post(client, [[0.4, 0.5, 0.6]])
            elapsed = time.perf_counter() - started
            assert response.status_code == 200
            # 30 ms of model time; a batcher that waited for company would take max_wait_ms (1 s)
            assert elapsed < MAX_WAIT_MS / 1000 / 2, elapsed


# ---- batching by default ---------------------------------------------------------------------------

BATCHABLE_PY = """\
import time


class Model:
    batchable = True  # predicts each row of a list on its own

    def load(self, path):
        pass

    def predict(self, rows):
        time.sleep(0.03)
        return [sum(row) for row in rows]
"""
UNBATCHED_PY = BATCHABLE_PY.replace("    batchable = True  # predicts each row of a list on its own\n\n", "")


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No batching settings in the config: each model gets its loader's default."""
    folder = tmp_path_factory.mktemp("defaults")
    project = Project.init(folder / "proj")
    project.add(save_cloudpickle(folder / "slow.pkl", slow_checked_model()), "slow", example=[[0.1, 0.2, 0.3]])
    project.add(save_cloudpickle(folder / "off.pkl", slow_checked_model()), "off", example=[[0.1, 0.2, 0.3]])
    project.set_fields("off", max_batch_size=1)
    for name, source in (("batchable", BATCHABLE_PY), ("unbatched", UNBATCHED_PY)):
        (folder / name).mkdir()
        (folder / name / "model.py").write_text(source)
        project.add(folder / name, name, example=[[1, 2]])
    with running_server(project.config) as server:
        yield server


def model_calls(server: ServerProcess, name: str, rows: list[list[float]], clients: int = 12) -> float:
    """Send `clients` requests at once (each answered with its own outputs); the model calls counted
    by the batch-size histogram."""

    def call(_index: int) -> httpx.Response:
        with server.client() as client:
            return client.post(f"/models/{name}/predict", json={"inputs": rows})

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(call, range(clients)))
    assert all(response.status_code == 200 for response in responses), [r.text for r in responses]
    assert len({str(response.json()["outputs"]) for response in responses}) == 1
    with server.client() as client:
        counts = metric_values(client.get("/metrics").text, "amms_batch_size_rows_count", "model")
    return counts.get((name,), 0.0)


def test_scikit_learn_models_are_batched_unless_the_config_says_otherwise(defaults: ServerProcess) -> None:
    assert 0 < model_calls(defaults, "slow", [[0.1, 0.2, 0.3]]) < 12
    assert model_calls(defaults, "off", [[0.1, 0.2, 0.3]]) == 0  # max_batch_size 1: no batcher at all


def test_custom_models_are_batched_only_when_they_declare_it(defaults: ServerProcess) -> None:
    assert 0 < model_calls(defaults, "batchable", [[1, 2], [3, 4]]) < 12
    with defaults.client() as client:
        assert client.post("/models/batchable/predict", json={"inputs": [[1, 2], [3, 4]]}).json()["outputs"] == [3, 7]
    assert model_calls(defaults, "unbatched", [[1, 2]]) == 0
    with defaults.client() as client:
        refused = client.post("/models/batchable/predict", json={"inputs": {"a": 1}})
    assert refused.status_code == 400
    assert refused.json()["error"] == "inputs: model 'batchable' takes a list of rows, got dict"
