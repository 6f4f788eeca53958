"""Interoperability: NVIDIA's official Python client (`tritonclient[http]`) against a real `amms serve`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import tritonclient.http as triton
from factories import IRIS_ROWS, TEXTS
from protocol_models import Repository, protocol_repository
from server_support import running_server
from tritonclient.utils import InferenceServerException


@dataclass
class Served:
    client: triton.InferenceServerClient
    repository: Repository


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    repository = protocol_repository(tmp_path_factory)
    with running_server(repository.config) as server:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            yield Served(client, repository)
        finally:
            client.close()


def tensor(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    infer_input = triton.InferInput(name, list(array.shape), datatype)
    infer_input.set_data_from_numpy(array, binary_data=binary)
    return infer_input


def test_health_and_server_metadata(served: Served) -> None:
    assert served.client.is_server_live() and served.client.is_server_ready()
    metadata = served.client.get_server_metadata()
    assert metadata["name"] == "amms" and "binary_tensor_data" in metadata["extensions"]


def test_model_readiness(served: Served) -> None:
    client = served.client
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1.0.0")
    assert not client.is_model_ready("iris", "1.2.0")  # FAILED its checksum
    assert not client.is_model_ready("nope")


def test_model_metadata(served: Served) -> None:
    iris = served.client.get_model_metadata("iris")
    assert iris["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in iris["outputs"]] == ["predict", "predict_proba"]
    assert served.client.get_model_metadata("iris", "1.0.0")["properties"]["version"] == "1.0.0"
    assert served.client.get_model_metadata("text")["inputs"][0]["datatype"] == "BYTES"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_tabular_model(served: Served, binary: bool) -> None:
    rows = np.asarray(IRIS_ROWS, dtype=np.float64)
    result = served.client.infer("iris", [tensor("input", rows, "FP64", binary)], request_id="r1")
    expected = served.repository.model("iris_v110").predict(IRIS_ROWS)
    assert result.as_numpy("predict").tolist() == expected.tolist()
    assert result.get_response()["id"] == "r1" and result.get_response()["model_version"] == "1.1.0"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_requested_outputs_and_a_version(served: Served, binary: bool) -> None:
    rows = np.asarray(IRIS_ROWS, dtype=np.float32)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("predict", "predict_proba")]
    result = served.client.infer("iris", [tensor("input", rows, "FP32", binary)], "1.0.0", outputs=outputs)
    model = served.repository.model("iris_v100")
    assert result.as_numpy("predict").tolist() == model.predict(IRIS_ROWS).tolist()
    assert np.allclose(result.as_numpy("predict_proba"), model.predict_proba(IRIS_ROWS))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_bytes_text_model(served: Served, binary: bool) -> None:
    texts = np.array([[text] for text in TEXTS], dtype=object)
    result = served.client.infer("text", [tensor("text", texts, "BYTES", binary)])
    predictions = result.as_numpy("predict").tolist()
    labels = [p.decode() if isinstance(p, bytes) else p for p in predictions]  # binary BYTES come back as bytes
    assert labels == served.repository.model("text").predict(TEXTS).tolist()


def test_a_compressed_request(served: Served) -> None:
    rows = np.asarray(IRIS_ROWS, dtype=np.float64)
    result = served.client.infer("iris", [tensor("input", rows, "FP64", True)], request_compression_algorithm="gzip")
    assert result.as_numpy("predict").tolist() == served.repository.model("iris_v110").predict(IRIS_ROWS).tolist()


def test_errors_reach_the_client_with_their_status(served: Served) -> None:
    with pytest.raises(InferenceServerException) as bad_shape:
        served.client.infer("iris", [tensor("input", np.zeros((1, 3)), "FP64", True)])
    assert bad_shape.value.status() == "400"
    assert bad_shape.value.message() == "input 'input': expected FP64 of shape [-1, 4], got shape [1, 3]"
    with pytest.raises(InferenceServerException) as unknown:
        served.client.get_model_metadata("nope")
    assert unknown.value.status() == "404" and "model 'nope' not found" in unknown.value.message()
