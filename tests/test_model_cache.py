"""The model cache (`amms serve --max-loaded-models N` / `--memory-budget SIZE`): models known without
being loaded, loaded by their first request (one load however many requests wait), the least
recently used idle version evicted to make room, the hot set (`keep_loaded`) loaded at start and
never evicted, 503 with Retry-After instead of a hang, and limits that can never be met refused at
start (and a model too big for the budget refused by `amms add-model`). Every test drives a real
server or CLI process."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import joblib
import numpy as np
import psutil
import pytest
from factories import IRIS_ROW, IRIS_ROWS, iris_classifier, save_cloudpickle, save_pickle
from projects import (
    Project,
    add_entries,
    amms_env,
    clone_model,
    custom_entry,
    error_of,
    make_project,
    publish_custom,
    run_amms,
)
from server_support import ServerProcess, metric_values, running_server, wait_until

from amms_cli.serving.model_cache import RETURN_FREED_AFTER_S

MIB = 2**20


def custom_source(*, load_s: float = 0.0, holds_mib: int = 0) -> str:
    """A custom model whose load takes `load_s` and keeps `holds_mib` resident; predict echoes."""
    return f"""
import time

class Model:
    def load(self, path):
        time.sleep({load_s})
        self.blob = bytearray({holds_mib} * 1024 * 1024)
        self.blob[::4096] = b"x" * len(self.blob[::4096])  # touched, so resident

    def predict(self, inputs):
        return inputs
"""


def cache_project(folder: Path, names: list[str], source: str, **fields: object) -> Path:
    """A project of custom models (published directly: no trial load), one version each."""
    config = make_project(folder, {})
    for name in names:
        publish_custom(folder / "models" / name, "1.0.0", source)
    add_entries(config, *(custom_entry(name, **fields) for name in names))
    return config


def predict(server: ServerProcess, name: str, value: int = 1, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{server.url}/models/{name}/predict", json={"inputs": [value]}, timeout=timeout)


def metrics(server: ServerProcess, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
    return metric_values(httpx.get(f"{server.url}/metrics", timeout=10).text, sample, *labels)


def resident(server: ServerProcess) -> set[str]:
    """The models with a version in memory, by the loaded-versions gauge."""
    return {name for (name,), count in metrics(server, "amms_loaded_versions", "model").items() if count}


def loads(server: ServerProcess) -> dict[str, float]:
    return {labels[0]: n for labels, n in metrics(server, "amms_model_loads_total", "model", "outcome").items()}


@pytest.fixture(scope="module")
def three_of_two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Models a, b, c and the hot h, with room for three versions: h and two others."""
    folder = tmp_path_factory.mktemp("cache")
    config = cache_project(folder, ["a", "b", "c"], custom_source())
    publish_custom(folder / "models" / "h", "1.0.0", custom_source())
    add_entries(config, custom_entry("h", keep_loaded=True))
    with running_server(config, "--max-loaded-models", "3") as server:
        yield server


def test_models_are_known_and_documented_before_any_is_loaded(three_of_two: ServerProcess) -> None:
    """Ready at once with only the hot set loaded; the others listed as on demand, not failed."""
    assert resident(three_of_two) == {"h"}
    with three_of_two.client() as client:
        model = client.get("/models/a").json()
        assert (model["ready"], model["resident"], model["served_version"]) == (True, False, "1.0.0")
        assert [(v["state"], v["reason"]) for v in model["versions"]] == [("ON_DEMAND", "loads on its first request")]
        assert client.get("/models/h").json()["resident"] is True
        assert client.get("/health/ready").json() == {"ready": True}
        assert client.get("/v2/models/a/ready").json() == {"name": "a", "ready": True, "resident": False}
        assert "/models/a/predict" in client.get("/openapi.json").json()["paths"]
        status = client.get("/v1/models/a").json()["model_version_status"]
        v2_metadata = client.get("/v2/models/a").json()
        tf_metadata = client.get("/v1/models/a/metadata").json()
    assert [(s["state"], s["status"]["error_code"]) for s in status] == [("START", "OK")]
    assert (v2_metadata["name"], v2_metadata["versions"], v2_metadata["platform"]) == ("a", ["1.0.0"], "custom")
    assert tf_metadata["model_spec"] == {"name": "a", "signature_name": "", "version": "1.0.0"}
    assert resident(three_of_two) == {"h"}  # describing them loaded nothing


def test_the_least_recently_used_idle_version_makes_room(three_of_two: ServerProcess) -> None:
    for name in ("a", "b"):
        assert predict(three_of_two, name).status_code == 200
    assert resident(three_of_two) == {"h", "a", "b"}
    response = predict(three_of_two, "c")  # full: a is the least recently used (h is never evicted)
    assert response.status_code == 200, response.text
    assert resident(three_of_two) == {"h", "b", "c"}
    with three_of_two.client() as client:
        (evicted,) = client.get("/models/a").json()["versions"]
    assert evicted["state"] == "ON_DEMAND" and evicted["reason"].startswith("evicted (least recently used)")
    assert metrics(three_of_two, "amms_model_evictions_total", "model") == {("a",): 1.0}
    assert predict(three_of_two, "a").json()["outputs"] == [1]  # back, in place of b
    assert resident(three_of_two) == {"h", "c", "a"}
    assert loads(three_of_two)["a"] == 2
    cold = metrics(three_of_two, "amms_cold_start_duration_seconds_count")
    assert cold[()] == 4  # a, b, c, a again: h loaded at start, not on a request
    table = run_amms("status", "--url", three_of_two.url, cwd=three_of_two.log_path.parent, check=True).stdout
    assert "ON_DEMAND" in table and "FAILED" not in table


def test_a_version_used_again_outlasts_rarely_used_ones_and_cold_starts_are_labelled(tmp_path: Path) -> None:
    """Room for two: `a` is requested twice, then three other models once each. Plain LRU would evict
    `a` for the second of them; the cache evicts the models used once (a burst of rarely used models
    must not push out a popular one). Every response that waited for a load says so, in every protocol,
    with a Server-Timing header; one that found its model loaded does not."""
    config = cache_project(tmp_path, ["a", "b", "c", "d"], custom_source())
    with running_server(config, "--max-loaded-models", "2") as server:
        first, again = predict(server, "a"), predict(server, "a")
        assert first.headers["Server-Timing"].startswith("cold-start;dur=")
        assert "Server-Timing" not in again.headers
        assert predict(server, "b").headers["Server-Timing"].startswith("cold-start;dur=")
        assert resident(server) == {"a", "b"}
        tensor = {"name": "input-0", "shape": [1], "datatype": "INT64", "data": [1]}
        v2 = httpx.post(f"{server.url}/v2/models/c/infer", json={"inputs": [tensor]}, timeout=30)
        assert v2.status_code == 200, v2.text
        assert v2.headers["Server-Timing"].startswith("cold-start;dur=")
        assert resident(server) == {"a", "c"}  # b was used once, a twice
        tf = httpx.post(f"{server.url}/v1/models/d:predict", json={"instances": [1]}, timeout=30)
        assert tf.status_code == 200, tf.text
        assert tf.headers["Server-Timing"].startswith("cold-start;dur=")
        assert resident(server) == {"a", "d"}
        assert "Server-Timing" not in predict(server, "a").headers
        assert loads(server) == {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}


def tally_model(log: Path) -> object:
    """A pickled model (by value, with cloudpickle) that appends a line to `log` on every predict."""

    class Tally:
        def predict(self, rows: list[object]) -> list[int]:
            with open(log, "a") as handle:
                handle.write("predict\n")
            return [0] * len(rows)

    return Tally()


def test_a_reload_verifies_checksums_but_runs_the_smoke_check_once(tmp_path: Path) -> None:
    """Room for one: `t` is evicted and loaded again. Its recorded example ran at its first load in
    the server and not at the reload (the same bytes passed it), but its checksums are verified at
    every load: files changed while it was out of memory are refused."""
    calls = tmp_path / "predict-calls.log"
    project = Project.init(tmp_path / "project")
    project.add(save_cloudpickle(tmp_path / "t.pkl", tally_model(calls)), "t", example=[IRIS_ROW])
    project.add(save_pickle(tmp_path / "x.pkl", iris_classifier()), "x", example=[IRIS_ROW])
    calls.unlink()  # add-model's trial load ran the example once; count the server's calls only

    def call_count() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    with running_server(project.config, "--max-loaded-models", "1") as server:
        post = {"inputs": [IRIS_ROW]}
        assert httpx.post(f"{server.url}/models/t/predict", json=post, timeout=30).status_code == 200
        assert call_count() == 2  # the smoke check, then the request
        assert httpx.post(f"{server.url}/models/x/predict", json=post, timeout=30).status_code == 200
        assert resident(server) == {"x"}
        assert httpx.post(f"{server.url}/models/t/predict", json=post, timeout=30).status_code == 200
        assert call_count() == 3  # loaded again: the request only
        assert loads(server)["t"] == 2
        assert httpx.post(f"{server.url}/models/x/predict", json=post, timeout=30).status_code == 200
        (artifact,) = (path for path in (project.models / "t" / "1.0.0").iterdir() if path.suffix == ".pkl")
        data = bytearray(artifact.read_bytes())
        data[-2] ^= 0xFF  # same size, other bytes
        artifact.write_bytes(bytes(data))
        refused = httpx.post(f"{server.url}/models/t/predict", json=post, timeout=30)
    assert refused.status_code == 503, refused.text
    assert "checksum mismatch" in refused.json()["error"]
    assert call_count() == 3


def thread_naming_model() -> object:
    """A pickled model (by value, with cloudpickle) that answers with the name of the thread that ran
    its predict: the event loop's (inline) or a lane's."""

    class WhereAmI:
        def predict(self, rows: list[object]) -> list[str]:
            return [threading.current_thread().name] * len(rows)

    return WhereAmI()


def test_a_version_loaded_again_predicts_where_its_earlier_loads_measured(tmp_path: Path) -> None:
    """Room for one: a fast model earns inline predictions (on the event loop) after its warm-up
    calls on a lane thread, is evicted, and is loaded again: its first request after the reload is
    already inline, not measured again on the lane."""
    project = Project.init(tmp_path / "project")
    project.add(save_cloudpickle(tmp_path / "w.pkl", thread_naming_model()), "w", example=[IRIS_ROW])
    project.add(save_pickle(tmp_path / "x.pkl", iris_classifier()), "x", example=[IRIS_ROW])
    post = {"inputs": [IRIS_ROW]}

    def thread_of_w(server: ServerProcess) -> str:
        response = httpx.post(f"{server.url}/models/w/predict", json=post, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["outputs"][0])

    with running_server(project.config, "--max-loaded-models", "1") as server:
        threads = [thread_of_w(server)]
        while threads[-1] != "MainThread" and len(threads) < 300:  # 32 calls unless one was slow
            threads.append(thread_of_w(server))
        assert threads[0].startswith("amms-lane"), threads[0]  # measured first
        assert threads[-1] == "MainThread", threads  # then inline
        assert httpx.post(f"{server.url}/models/x/predict", json=post, timeout=30).status_code == 200
        assert resident(server) == {"x"}
        assert thread_of_w(server) == "MainThread"
        assert loads(server)["w"] == 2


def priority_reporting_model() -> object:
    """A pickled model (by value) that answers with the CPU scheduling of the thread that unpickled it
    (its load) and of the thread that runs its predict: policy and niceness of each."""

    class Priorities:
        def __setstate__(self, state: dict[str, object]) -> None:
            self.__dict__.update(state, loaded_on=scheduling())

        def predict(self, rows: list[object]) -> list[object]:
            return [{"load": self.__dict__.get("loaded_on"), "predict": scheduling()}] * len(rows)

    def scheduling() -> list[int]:
        import os  # inside: cloudpickle saves the function by value, the module by name
        import threading

        return [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())]

    model = Priorities()
    model.__dict__["saved"] = True  # an empty state would not be passed to __setstate__
    return model


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread CPU priority is Linux's")
def test_loads_run_behind_requests_at_a_lower_cpu_priority(tmp_path: Path) -> None:
    """A load thread that woke up on the event loop's CPU preempted the requests in flight: loads run
    with SCHED_BATCH and 10 more niceness than the server; predictions keep the server's own."""
    project = Project.init(tmp_path / "project")
    project.add(save_cloudpickle(tmp_path / "p.pkl", priority_reporting_model()), "p", example=[IRIS_ROW])
    with running_server(project.config, "--max-loaded-models", "1") as server:
        server_niceness = psutil.Process(server.process.pid).nice()
        response = httpx.post(f"{server.url}/models/p/predict", json={"inputs": [IRIS_ROW]}, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()["outputs"][0]
    assert answer["load"] == [os.SCHED_BATCH, min(19, server_niceness + 10)], answer
    assert answer["predict"] == [os.SCHED_OTHER, server_niceness], answer


@pytest.fixture(scope="module")
def slow_loads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("slow-cache")
    config = cache_project(folder, ["s1", "s2", "s3"], custom_source(load_s=1.5))
    with running_server(config, "--max-loaded-models", "1", "--request-timeout", "1") as server:
        yield server


def test_concurrent_first_requests_share_one_load_and_a_slow_one_gets_503_with_retry_after(
    slow_loads: ServerProcess,
) -> None:
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(lambda i: predict(slow_loads, "s1", i), range(8)))
    # the load takes 1.5 s, the wait is 1 s: every request is told to come back, none hangs or fails
    assert {r.status_code for r in first} == {503}, [r.text for r in first]
    assert all(r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) >= 1 for r in first)
    assert "is not loaded yet after 1 s" in first[0].json()["error"]
    assert wait_until(lambda: predict(slow_loads, "s1").status_code == 200, timeout=10)
    assert loads(slow_loads) == {"s1": 1.0}  # one load for nine requests


def test_a_storm_over_more_models_than_fit_is_answered_without_thrashing(slow_loads: ServerProcess) -> None:
    """Room for one version, three models that each take 1.5 s to load, 30 requests at once: each gets
    200 or 503 with Retry-After; loads are bounded (no model is evicted within a second of loading);
    afterwards every model still serves."""
    before = sum(loads(slow_loads).values())
    with ThreadPoolExecutor(30) as pool:
        storm = list(pool.map(lambda i: predict(slow_loads, f"s{1 + i % 3}", i), range(30)))
    assert {r.status_code for r in storm} <= {200, 503}, [r.text for r in storm if r.status_code not in (200, 503)]
    assert all("Retry-After" in r.headers for r in storm if r.status_code == 503)
    assert sum(loads(slow_loads).values()) - before <= 3
    for name in ("s1", "s2", "s3"):
        assert wait_until(lambda name=name: predict(slow_loads, name).status_code == 200, timeout=15), name
    assert resident(slow_loads) <= {"s1", "s2", "s3"} and len(resident(slow_loads)) == 1


@pytest.mark.parametrize("model_mib", [40, 12])  # 40: mapped blocks of their own; 12: from the heap, reused
def test_a_memory_budget_keeps_the_loaded_versions_within_it(tmp_path: Path, model_mib: int) -> None:
    """Models under a budget of 2.5 of them: two fit, the third evicts the least recently used, and
    the server's memory stays within its empty size plus the budget (freed memory the next load does
    not reuse goes back to the system a few seconds after the eviction)."""
    config = cache_project(tmp_path, ["m1", "m2", "m3", "m4"], custom_source(holds_mib=model_mib))
    budget_mib = 2.5 * model_mib
    with running_server(config, "--memory-budget", f"{budget_mib:g}MiB") as server:
        empty = psutil.Process(server.process.pid).memory_info().rss
        for name in ("m1", "m2", "m3", "m4", "m1"):
            assert predict(server, name).status_code == 200
            charged = sum(metrics(server, "amms_model_resident_bytes", "model").values())
            assert charged <= budget_mib * MIB, (name, charged / MIB)
        time.sleep(RETURN_FREED_AFTER_S + 1)
        grown = psutil.Process(server.process.pid).memory_info().rss - empty
        evictions = sum(metrics(server, "amms_model_evictions_total", "model").values())
    assert evictions == 3
    assert grown <= budget_mib * MIB + 20 * MIB, grown / MIB  # the budget, plus the allocator's slack


def test_memory_freed_by_unloads_goes_back_to_the_system(tmp_path: Path) -> None:
    """Models of 12 MiB come from the allocator's heap (for the next loads to reuse); what eight
    unloads free and no load takes is given back to the system within seconds."""
    names = [f"u{index}" for index in range(8)]
    config = cache_project(tmp_path, names, custom_source(holds_mib=12))
    token = {"Authorization": "Bearer t0ken"}
    with running_server(config, "--max-loaded-models", "10", env={"AMMS_ADMIN_TOKEN": "t0ken"}) as server:
        process = psutil.Process(server.process.pid)
        empty = process.memory_info().rss
        for name in names:
            assert predict(server, name).status_code == 200
        loaded = process.memory_info().rss - empty
        with server.client() as client:
            for name in names:
                assert client.post(f"/admin/models/{name}/unload", headers=token).status_code == 200
        assert wait_until(
            lambda: process.memory_info().rss - empty < loaded - 64 * MIB, timeout=RETURN_FREED_AFTER_S + 8
        )
    assert loaded >= 90 * MIB, loaded / MIB


def test_a_budget_smaller_than_one_model_is_refused_at_start_naming_both_sizes(tmp_path: Path) -> None:
    config = cache_project(tmp_path, ["big"], custom_source())
    result = run_amms("serve", "--config", str(config), "--port", "0", "--memory-budget", "100B", cwd=tmp_path)
    message, hint = error_of(result)
    size = (tmp_path / "models" / "big" / "1.0.0" / "model.py").stat().st_size
    assert message.startswith(f"model 'big' version 1.0.0 needs about {size} B, more than --memory-budget 100 B")
    assert hint is not None and "--memory-budget" in hint
    # the same from the environment (how an image is configured)
    command = ("serve", "--config", str(config), "--port", "0")
    from_env = run_amms(*command, cwd=tmp_path, env=amms_env(AMMS_MEMORY_BUDGET="100B"))
    assert error_of(from_env) == (message, hint)


def test_a_model_too_big_for_the_budget_is_refused_at_add_time_by_what_it_measures(tmp_path: Path) -> None:
    config = make_project(tmp_path, {})
    model = iris_classifier()
    model.padding_ = np.zeros(48 * MIB // 8)  # 48 MiB once loaded, a few KiB compressed on disk
    artifact = tmp_path / "big.joblib"
    joblib.dump(model, artifact, compress=3)
    assert artifact.stat().st_size < MIB
    before = config.read_text()
    add = ("add-model", str(artifact), "--name", "big", "--example", json.dumps([IRIS_ROW]))
    message, hint = error_of(run_amms(*add, "--memory-budget", "16MiB", cwd=tmp_path))
    measured = re.fullmatch(
        r"model 'big' version 1\.0\.0 takes about ([0-9.]+) MiB in memory once loaded \(measured by its trial "
        r"load\), more than --memory-budget 16\.0 MiB",
        message,
    )
    assert measured is not None, message
    assert 44 <= float(measured.group(1)) <= 80  # the array, not the file's size
    assert hint is not None and "AMMS_MEMORY_BUDGET" in hint
    assert not (tmp_path / "models" / "big").exists() and config.read_text() == before  # nothing published
    # the serving budget from the environment, as `amms serve` reads it: this one fits
    run_amms(*add, cwd=tmp_path, env=amms_env(AMMS_MEMORY_BUDGET="1GiB"), check=True)
    bigger = tmp_path / "bigger.joblib"
    model.padding_ = np.zeros(96 * MIB // 8)
    joblib.dump(model, bigger, compress=3)
    bump = run_amms("bump-version", "big", str(bigger), cwd=tmp_path, env=amms_env(AMMS_MEMORY_BUDGET="64MiB"))
    message, _ = error_of(bump)
    assert message.startswith("model 'big' version 1.0.1 takes about ")
    assert message.endswith("more than --memory-budget 64.0 MiB")
    left = sorted(path.name for path in (tmp_path / "models" / "big").iterdir())
    assert left == [".amms.lock", "1.0.0"]  # no 1.0.1, no staging folder left behind


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--memory-budget", "lots"), "--memory-budget: cannot read 'lots' as a size"),
        (("--max-loaded-models", "1"), "1 models are keep_loaded, leaving no room for the other 1"),
        (("--memory-budget", "500B", "--workers", "2"), "more than --memory-budget 250 B (a worker's share, of 2)"),
    ],
)
def test_limits_that_cannot_work_are_one_clear_error(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    config = cache_project(tmp_path, ["plain"], custom_source())
    publish_custom(tmp_path / "models" / "hot", "1.0.0", custom_source())
    add_entries(config, custom_entry("hot", keep_loaded=True))
    message, _ = error_of(run_amms("serve", "--config", str(config), "--port", "0", *args, cwd=tmp_path))
    assert expected in message, message


def test_live_reload_changes_what_loads_and_swaps_what_is_resident(tmp_path: Path) -> None:
    config = cache_project(tmp_path, ["cold", "warm"], custom_source())
    with running_server(config, "--watch", "--max-loaded-models", "4") as server:
        assert predict(server, "warm").json()["version"] == "1.0.0"
        for name in ("cold", "warm"):
            publish_custom(tmp_path / "models" / name, "1.0.1", custom_source())

        def served(name: str) -> object:
            return httpx.get(f"{server.url}/models/{name}", timeout=5).json()["served_version"]

        assert wait_until(lambda: served("cold") == "1.0.1" and served("warm") == "1.0.1", timeout=15)
        assert loads(server) == {"warm": 2.0}  # the resident one swapped; the other only changed target
        assert resident(server) == {"warm"}
        assert predict(server, "cold").json()["version"] == "1.0.1"


def test_without_limits_every_model_loads_at_start(tmp_path: Path) -> None:
    config = cache_project(tmp_path, ["x", "y"], custom_source())
    with running_server(config) as server:
        assert resident(server) == {"x", "y"}
        model = httpx.get(f"{server.url}/models/x", timeout=5).json()
    assert (model["resident"], model["versions"][0]["state"]) == (True, "AVAILABLE")


def test_pickled_models_share_a_bounded_set_of_lanes(tmp_path: Path) -> None:
    """Twelve pickled models, --predict-threads 2: every one predicts, and the server does not grow a
    thread per model (it used to: one prediction thread for each pickled model)."""
    config = make_project(tmp_path, {"p00": iris_classifier()})
    for index in range(1, 12):
        clone_model(tmp_path / "models", "p00", f"p{index:02d}")
    add_entries(config, *({"model_name": f"p{index:02d}"} for index in range(1, 12)))
    with running_server(config, "--predict-threads", "2") as server:
        for index in [*range(12)] * 3:
            response = httpx.post(f"{server.url}/models/p{index:02d}/predict", json={"inputs": IRIS_ROWS}, timeout=10)
            assert response.status_code == 200, response.text
        threads = psutil.Process(server.process.pid).num_threads()
    assert threads < 12, threads


def test_a_hot_set_bigger_than_the_budget_is_refused_at_start(tmp_path: Path) -> None:
    config = cache_project(tmp_path, ["h1", "h2"], custom_source(), keep_loaded=True)
    size = (tmp_path / "models" / "h1" / "1.0.0" / "model.py").stat().st_size  # each fits alone, not both
    args = ("--memory-budget", f"{size + size // 2}B")
    message, hint = error_of(run_amms("serve", "--config", str(config), "--port", "0", *args, cwd=tmp_path))
    assert message == f"the keep_loaded models need about {2 * size} B, more than --memory-budget {size + size // 2} B"
    assert hint == "raise --memory-budget, or set keep_loaded on fewer models"


def test_first_loads_at_the_same_time_each_measure_their_own_memory(tmp_path: Path) -> None:
    """Six pickled models of 16 MiB asked for at once: two load at a time, but a load that measures
    its memory (a version's first) runs alone, so each figure is its own model's: within a few MiB of
    its file (the first also imports what predicting needs). Measured side by side, each counted part
    of the other's, up to two or three times its size, and a budget held fewer versions than fit."""
    project = Project.init(tmp_path)
    artifact = save_pickle(tmp_path / "big.pkl", iris_classifier(padding_mb=16))
    project.add(artifact, "w0", example=[IRIS_ROW])
    names = [f"w{index}" for index in range(6)]
    for name in names[1:]:
        clone_model(tmp_path / "models", "w0", name)
    add_entries(project.config, *({"model_name": name, "aspired_version": "1.x"} for name in names[1:]))
    size = artifact.stat().st_size
    with running_server(project.config, "--max-loaded-models", "10") as server:
        body = {"inputs": [IRIS_ROW]}
        with ThreadPoolExecutor(len(names)) as pool:
            answers = list(
                pool.map(lambda n: httpx.post(f"{server.url}/models/{n}/predict", json=body, timeout=60), names)
            )
        assert [answer.status_code for answer in answers] == [200] * len(names)
        figures = {n: httpx.get(f"{server.url}/models/{n}", timeout=10).json()["memory_bytes"] for n in names}
    assert all(size <= figure <= size + 3 * MIB for figure in figures.values()), {
        name: round(figure / MIB, 1) for name, figure in figures.items()
    }


def ballast_source(model_mib: int, ballast_mib: int) -> str:
    """A custom model of `model_mib`; its prediction of [99] makes the server hold `ballast_mib` more
    outside any version (as bookkeeping, caches or a leak would)."""
    return f"""
import json

def touched(mib):
    block = bytearray(mib * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    return block

class Model:
    def load(self, path):
        self.blob = touched({model_mib})

    def predict(self, inputs):
        if inputs == [99]:
            json.__dict__.setdefault("_ballast", []).append(touched({ballast_mib}))
        return inputs
"""


def test_a_budget_counts_what_the_server_holds_beyond_its_versions(tmp_path: Path) -> None:
    """Budget 50 MiB, models of 8 MiB, and 24 MiB the server comes to hold outside any version: five
    versions fit beside the share of the budget set aside until the server is measured (7.5 MiB),
    but once an eviction has returned freed memory and measured the process, the 24 MiB count, the
    next load evicts down to what fits, and the server's memory stays within its start plus the budget
    (without it: 72 MiB)."""
    names = [f"g{index}" for index in range(8)]
    config = cache_project(tmp_path, names, ballast_source(model_mib=8, ballast_mib=24))
    budget_mib = 50
    with running_server(config, "--memory-budget", f"{budget_mib}MiB") as server:
        process = psutil.Process(server.process.pid)
        empty = process.memory_info().rss
        assert predict(server, "g0", 99).status_code == 200
        for name in names[1:7]:  # g5 evicts g0, the least recently used
            assert predict(server, name).status_code == 200
        assert wait_until(lambda: overhead(server) >= 24 * MIB, timeout=RETURN_FREED_AFTER_S + 5), overhead(server)
        assert predict(server, "g7").status_code == 200
        held = sum(metrics(server, "amms_model_resident_bytes", "model").values())
        assert held + overhead(server) <= budget_mib * MIB, (held / MIB, overhead(server) / MIB)
        assert len(resident(server)) <= 3, resident(server)
        time.sleep(RETURN_FREED_AFTER_S + 1)
        grown = process.memory_info().rss - empty
    assert grown <= budget_mib * MIB + 8 * MIB, grown / MIB


def overhead(server: ServerProcess) -> float:
    return sum(metrics(server, "amms_model_cache_overhead_bytes").values())


def test_until_measured_a_share_of_the_budget_is_set_aside_but_one_model_always_loads(tmp_path: Path) -> None:
    """Budget 20 MiB, models of 18 MiB: until the server's own memory is measured, 3 MiB (15%) of the
    budget is set aside for it, so neither model fits beside it; but with nothing else loaded,
    evicting cannot make room, and each loads in turn (without that, the second waited for room until
    503)."""
    config = cache_project(tmp_path, ["big1", "big2"], custom_source(holds_mib=18))
    with running_server(config, "--memory-budget", "20MiB") as server:
        assert overhead(server) == 3 * MIB
        for name in ("big1", "big2", "big1", "big2"):
            answer = predict(server, name)
            assert answer.status_code == 200, (name, answer.text)
            assert resident(server) == {name}
        assert overhead(server) >= 3 * MIB  # the most over the window, which began with the share
