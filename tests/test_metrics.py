"""End to end: /metrics counts the requests a client made, by model, version, protocol and status."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from factories import IRIS_ROWS, custom_model_dir, iris_classifier, save_pickle
from projects import Project
from prometheus_client.parser import text_string_to_metric_families
from server_support import running_server


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("metrics")
    project = Project.init(folder)
    project.add(save_pickle(folder / "iris.pkl", iris_classifier()), "iris", example=IRIS_ROWS[:1])
    project.set_fields("iris", max_batch_size=8, max_wait_ms=2)
    project.add(custom_model_dir(folder / "custom"), "custom")
    with running_server(project.config) as server, server.client() as client:
        yield client


@pytest.fixture(scope="module")
def samples(client: httpx.Client) -> list[Sample]:
    """Make a known set of requests once, then read /metrics."""
    calls = [
        *[("/models/iris/predict", IRIS_ROWS)] * 3,
        *[("/models/iris/versions/1.0.0/predict", IRIS_ROWS)] * 2,
        ("/models/iris/predict", [[1.0, 2.0]]),  # 400
        ("/models/custom/predict", [1, 2]),
        ("/models/custom/predict", ["boom"]),  # 500
        ("/models/nope/predict", [1]),  # 404, unknown model
        *[("/models/iris/versions/7.7.7/predict", IRIS_ROWS)] * 2,  # 404, unknown version
    ]
    for path, inputs in calls:
        client.post(path, json={"inputs": inputs})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [
        Sample(sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def values(samples: list[Sample], name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in keys): s.value for s in samples if s.name == name}


def test_requests_are_counted_by_model_version_protocol_and_code(samples: list[Sample]) -> None:
    counts = values(samples, "amms_requests_total", "model", "version", "protocol", "code")
    assert counts == {
        ("iris", "1.0.0", "native", "200"): 5,
        ("iris", "1.0.0", "native", "400"): 1,
        ("iris", "", "native", "404"): 2,
        ("custom", "1.0.0", "native", "200"): 1,
        ("custom", "1.0.0", "native", "500"): 1,
        ("<unknown>", "", "native", "404"): 1,
    }


def test_every_counted_request_has_a_latency_observation(samples: list[Sample]) -> None:
    counts = values(samples, "amms_request_duration_seconds_count", "model", "version", "protocol")
    assert counts == {
        ("iris", "1.0.0", "native"): 6,
        ("iris", "", "native"): 2,
        ("custom", "1.0.0", "native"): 2,
        ("<unknown>", "", "native"): 1,
    }
    sums = values(samples, "amms_request_duration_seconds_sum", "model", "version", "protocol")
    assert all(0 < seconds < 10 for seconds in sums.values())


def test_loads_and_loaded_versions_are_reported(samples: list[Sample]) -> None:
    assert values(samples, "amms_model_load_duration_seconds_count", "model") == {("iris",): 1, ("custom",): 1}
    assert values(samples, "amms_loaded_versions", "model") == {("iris",): 1, ("custom",): 1}


def test_batched_model_calls_are_counted_by_rows(samples: list[Sample]) -> None:
    assert values(samples, "amms_batch_size_rows_count", "model") == {("iris",): 5}
    assert values(samples, "amms_batch_size_rows_sum", "model") == {("iris",): 5 * len(IRIS_ROWS)}


def test_counters_grow_with_each_request(client: httpx.Client) -> None:
    def served() -> float:
        text = client.get("/metrics").text
        counts = {
            (s.labels["model"], s.labels["code"]): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "amms_requests_total"
        }
        return counts.get(("custom", "200"), 0.0)

    before = served()
    for _ in range(4):
        assert client.post("/models/custom/predict", json={"inputs": [1]}).status_code == 200
    assert served() == before + 4
