"""End to end: every error of the serving API, as a client sees it over HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from factories import IRIS_ROWS, TEXTS, custom_model_dir, iris_classifier, save_cloudpickle, save_pickle, text_pipeline
from projects import Project
from server_support import ServerProcess, running_server, wait_until

BODY_LIMIT_MIB = 0.01  # 10,485 bytes


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("errors")
    project = Project.init(folder)
    project.add(save_pickle(folder / "iris.pkl", iris_classifier()), "iris", example=IRIS_ROWS[:1])
    project.add(custom_model_dir(folder / "custom"), "custom")
    project.add(save_cloudpickle(folder / "text.pkl", text_pipeline()), "text", example=TEXTS[:1])
    return project


@pytest.fixture(scope="module")
def server(repo: Project) -> Iterator[ServerProcess]:
    with running_server(repo.config, "--body-limit-mib", str(BODY_LIMIT_MIB)) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    return str(body["error"])


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body)


# 404


def test_an_unknown_model_is_404_listing_the_models(client: httpx.Client) -> None:
    message = error_of(post(client, "/models/nope/predict", {"inputs": IRIS_ROWS}), 404)
    assert message == "model 'nope' not found (models: custom, iris, text)"
    assert "models: custom, iris, text" in error_of(client.get("/models/nope"), 404)


def test_an_unknown_version_is_404_listing_the_loaded_ones(client: httpx.Client) -> None:
    message = error_of(post(client, "/models/iris/versions/9.9.9/predict", {"inputs": IRIS_ROWS}), 404)
    assert message == "model 'iris' has no loaded version 9.9.9 (loaded: 1.0.0)"


def test_an_unknown_route_is_404_and_a_wrong_method_405(client: httpx.Client) -> None:
    assert "/docs" in error_of(client.get("/nowhere"), 404)
    assert "GET" in error_of(client.get("/models/iris/predict"), 405)


# 400


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"inputs": [[1, 2, 3, 4]]', "malformed JSON"),
        (b"", "empty request body"),
        (b"[[1, 2, 3, 4]]", "request body must be a JSON object, got list"),
        (b'{"rows": [[1, 2, 3, 4]]}', "request body needs an 'inputs' field"),
        (b'{"inputs": [[1, 2, 3, 4]], "extra": 1}', "unknown field 'extra'"),
        (b'{"inputs": [[1, 2, 3, 4]], "probabilities": "yes"}', "'probabilities' must be true or false"),
    ],
)
def test_a_malformed_body_is_400_saying_what_is_wrong(client: httpx.Client, content: bytes, expected: str) -> None:
    response = client.post("/models/iris/predict", content=content, headers={"content-type": "application/json"})
    assert expected in error_of(response, 400)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([[5.1, 3.5, 1.4]], "inputs: expected 4 features per row, got 3"),
        ([[5.1, 3.5, 1.4, 0.2, 9.9]], "inputs: expected 4 features per row, got 5"),
        ([["a", "b", "c", "d"]], "inputs: expected numbers, got strings"),
        ([[5.1, 3.5, 1.4, 0.2], [1.0]], "inputs: rows have different lengths (expected a rectangular array)"),
        ([[[5.1, 3.5, 1.4, 0.2]]], "inputs: expected rows of numbers (2 dimensions), got 3 dimensions"),
        ([], "inputs: empty input (send at least one row)"),
        ([{"sepal": 1.0}], "inputs: this model has no recorded feature names; send rows of numbers"),
    ],
)
def test_a_wrong_shape_type_or_width_is_400_naming_the_field(client: httpx.Client, inputs: Any, expected: str) -> None:
    assert error_of(post(client, "/models/iris/predict", {"inputs": inputs}), 400) == expected


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (5, "inputs: expected a string or a list of strings, got int"),
        (["fine", 3], "inputs[1]: expected a string, got int"),
        ("", "inputs: empty input (send at least one row)"),
    ],
)
def test_a_text_model_names_the_item_that_is_not_a_string(client: httpx.Client, inputs: Any, expected: str) -> None:
    assert error_of(post(client, "/models/text/predict", {"inputs": inputs}), 400) == expected


def test_probabilities_from_a_model_without_them_is_400(client: httpx.Client) -> None:
    message = error_of(post(client, "/models/custom/predict", {"inputs": [1], "probabilities": True}), 400)
    assert message == "model 'custom' gives no class probabilities"


# 413


def test_a_body_over_the_limit_is_413(client: httpx.Client) -> None:
    body = json.dumps({"inputs": [[5.1, 3.5, 1.4, 0.2]] * 1000}).encode()
    response = client.post("/models/iris/predict", content=body, headers={"content-type": "application/json"})
    assert error_of(response, 413) == f"request body of {len(body)} bytes is over the limit of 10485 bytes"


def test_a_chunked_body_over_the_limit_is_413_too(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(1000):
            yield b"[5.1, 3.5, 1.4, 0.2],"
        yield b"[5.1, 3.5, 1.4, 0.2]]}"

    response = client.post("/models/iris/predict", content=chunks(), headers={"content-type": "application/json"})
    assert error_of(response, 413) == "request body is over the limit of 10485 bytes"


def test_a_body_under_the_limit_is_served(client: httpx.Client) -> None:
    response = post(client, "/models/iris/predict", {"inputs": [[5.1, 3.5, 1.4, 0.2]] * 400})
    assert response.status_code == 200, response.text
    assert len(response.json()["outputs"]) == 400


# 500


def test_a_model_that_raises_is_500_with_an_error_id_and_the_server_keeps_serving(
    client: httpx.Client, server: ServerProcess
) -> None:
    message = error_of(post(client, "/models/custom/predict", {"inputs": ["boom"]}), 500)
    match = re.fullmatch(r"the model raised RuntimeError while predicting \(error id ([0-9a-f]{8}); .*\)", message)
    assert match, message
    assert "secret internal detail" not in message
    assert wait_until(lambda: match.group(1) in server.log(), timeout=5)
    assert "secret internal detail" in server.log()
    assert post(client, "/models/custom/predict", {"inputs": [1, 2]}).json()["outputs"] == [2.0, 4.0]
    assert post(client, "/models/iris/predict", {"inputs": IRIS_ROWS}).status_code == 200
    assert client.get("/health/ready").json() == {"ready": True}


@pytest.mark.slow
def test_a_slow_model_blocks_neither_health_checks_nor_other_models(
    client: httpx.Client, server: ServerProcess
) -> None:
    with ThreadPoolExecutor(1) as pool, server.client(timeout=30) as slow_client:
        slow = pool.submit(post, slow_client, "/models/custom/predict", {"inputs": ["sleep", 3]})
        time.sleep(0.5)  # the slow request is now inside the model
        started = time.perf_counter()
        for _ in range(5):
            assert client.get("/health/live").status_code == 200
            assert post(client, "/models/iris/predict", {"inputs": IRIS_ROWS}).status_code == 200
            assert post(client, "/models/custom/predict", {"inputs": [1]}).status_code == 200
        fast_seconds = time.perf_counter() - started
        assert not slow.done()
        assert slow.result(timeout=30).json()["outputs"] == ["slept"]
    assert fast_seconds < 1.5


# 503


@pytest.mark.slow
def test_a_loading_model_is_503_while_the_server_is_live_and_other_models_serve(repo: Project) -> None:
    # a second server on the same repository, whose custom model sleeps in load()
    env = {"AMMS_TEST_LOAD_SLEEP": "3"}
    with running_server(repo.config, env=env, ready=False) as server, server.client() as client:
        assert wait_until(lambda: version_state(client, "custom") == "LOADING", timeout=10)
        assert client.get("/models/iris").json()["ready"]  # loaded first, in config order
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "error": "not ready: waiting for ['custom', 'text']"}
        message = error_of(post(client, "/models/custom/predict", {"inputs": [1]}), 503)
        assert message == "model 'custom' has no available version (loading)"
        message = error_of(post(client, "/models/custom/versions/1.0.0/predict", {"inputs": [1]}), 503)
        assert message == "model 'custom' version 1.0.0 is loading"
        assert post(client, "/models/iris/predict", {"inputs": IRIS_ROWS}).status_code == 200
        assert wait_until(lambda: client.get("/health/ready").status_code == 200, timeout=30)
        assert post(client, "/models/custom/predict", {"inputs": [1]}).json()["outputs"] == [2.0]


def version_state(client: httpx.Client, name: str) -> str | None:
    response = client.get(f"/models/{name}")  # 404 until the first reconcile reaches the model
    versions = response.json()["versions"] if response.status_code == 200 else []
    return versions[0]["state"] if versions else None
