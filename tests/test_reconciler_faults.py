"""Faults of the reconciler found by testing it, each fixed and kept fixed here: abandoned loads that
kept their memory, versions closed under queued requests, triggers that were not coalesced, unload
errors that vanished, an add-model killed between its two writes, and readiness held hostage by a
model with nothing to load."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from factories import IRIS_ROWS, iris_classifier, save_pickle
from projects import (
    RAISES_IN_LOAD,
    SLOW_PREDICT,
    Project,
    add_entries,
    amms_argv,
    amms_env,
    custom_entry,
    make_project,
    publish_custom,
)
from server_support import running_server, wait_until

from amms_cli.loaders.base import LoadOptions
from amms_cli.loaders.custom import CUSTOM
from amms_cli.project.config import load_config
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.loading import DaemonThreads, in_daemon_thread
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.reconciler import Reconciler
from amms_cli.serving.registry import Registry
from amms_cli.serving.settings import ServeSettings

BIG_LATE_LOAD = """
import time

class Model:
    def load(self, path):
        time.sleep(2.0)
        self.blob = bytearray(150 * 1024 * 1024)  # touched: resident, not just reserved
        self.blob[::4096] = b"x" * len(self.blob[::4096])

    def predict(self, inputs):
        return inputs
"""


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@pytest.mark.slow
def test_a_load_that_finishes_after_its_timeout_is_closed(tmp_path: Path) -> None:
    config = make_project(tmp_path, {})
    names = [f"late{number}" for number in range(3)]
    for name in names:
        publish_custom(tmp_path / "models" / name, "1.0.0", BIG_LATE_LOAD)
    add_entries(config, *(custom_entry(name, load_timeout_s=1) for name in names))
    with running_server(config, ready=False) as server:
        baseline = rss_mib(server.process.pid)
        closed = "finished loading after its timeout; closed"
        assert wait_until(lambda: server.log().count(closed) == 3, timeout=30), server.log()[-3000:]
        # what the last close freed may take the system a moment to take back
        released = wait_until(lambda: rss_mib(server.process.pid) - baseline < 150, timeout=10)
        grown = rss_mib(server.process.pid) - baseline
    assert released, f"three abandoned 150 MiB loads left {grown:.0f} MiB behind"


def test_a_late_result_goes_to_the_abandoned_callback() -> None:
    closed: list[str] = []

    def slow() -> str:
        time.sleep(0.3)
        return "model"

    async def scenario() -> None:
        future = in_daemon_thread(slow, abandoned=closed.append)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(future, 0.05)
        await asyncio.sleep(0.6)

    asyncio.run(scenario())
    assert closed == ["model"]


def test_load_threads_are_reused_and_a_hung_load_does_not_hold_up_the_next() -> None:
    threads = DaemonThreads(idle_s=0.3)
    ran: list[int] = []
    for number in range(5):  # one after another: one thread runs them all
        threads.run(functools.partial(ran.append, number))
        assert wait_until(lambda: threads.waiting == 1, timeout=5)
    assert ran == [0, 1, 2, 3, 4] and threads.threads == 1
    hang, done = threading.Event(), threading.Event()
    threads.run(hang.wait)  # holds its thread until set
    threads.run(done.set)  # gets a thread of its own
    assert done.wait(5) and threads.threads == 2
    assert wait_until(lambda: threads.threads == 1, timeout=5), "the idle thread did not end"
    hang.set()
    assert wait_until(lambda: threads.threads == 0, timeout=5), "the freed thread did not end"


def test_a_custom_model_that_fails_to_load_leaves_no_module_behind(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(RAISES_IN_LOAD)
    before = {name for name in sys.modules if name.startswith("amms_custom_")}
    with pytest.raises(RuntimeError, match="no weights"):
        CUSTOM.load(tmp_path, LoadOptions())
    assert {name for name in sys.modules if name.startswith("amms_custom_")} == before


@pytest.mark.slow
def test_queued_requests_finish_on_the_version_that_was_swapped_out(tmp_path: Path) -> None:
    config = make_project(tmp_path, {})
    publish_custom(tmp_path / "models" / "slow", "1.0.0", SLOW_PREDICT)
    add_entries(config, custom_entry("slow"))
    args = ("--watch", "--predict-threads", "1", "--drain-timeout", "1")
    with running_server(config, *args) as server, ThreadPoolExecutor(3) as pool:
        post = lambda i: httpx.post(f"{server.url}/models/slow/predict", json={"inputs": [i]}, timeout=30)  # noqa: E731
        futures = [pool.submit(post, i) for i in range(3)]
        time.sleep(0.3)  # one predicting, two queued behind it on the one thread
        publish_custom(tmp_path / "models" / "slow", "1.0.1", SLOW_PREDICT)
        responses = [future.result() for future in futures]
        log = server.log()
    assert [(r.status_code, r.json().get("outputs")) for r in responses] == [(200, [i]) for i in range(3)]
    assert {r.json()["version"] for r in responses} == {"1.0.0"}
    assert "still has 2 request(s) after 1 s; it is closed once they finish" in log


def _bare_reconciler(config_path: Path) -> Reconciler:
    settings = ServeSettings(config_path=config_path)
    return Reconciler(Registry(), Lanes(1), load_config(config_path), Metrics(), settings)


def test_triggers_during_a_pass_share_one_more_pass(tmp_path: Path) -> None:
    config = make_project(tmp_path, {})
    reconciler = _bare_reconciler(config)
    passes = 0

    async def counted_pass() -> None:
        nonlocal passes
        passes += 1
        await asyncio.sleep(0.2)

    reconciler._pass = counted_pass  # type: ignore[method-assign]

    async def scenario() -> None:
        first = asyncio.create_task(reconciler.reconcile())
        await asyncio.sleep(0.05)  # the first pass is running
        await asyncio.gather(first, *(reconciler.reconcile() for _ in range(10)))

    asyncio.run(scenario())
    assert passes == 2


def test_an_unload_that_fails_is_logged_and_finishes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_project(tmp_path, {})
    reconciler = _bare_reconciler(config)
    unloader = reconciler.unloader

    closed: list[object] = []
    unloader.on_closed = closed.append
    reconciler.lanes.for_model("m", True)  # the model's lane, held by its one loaded version

    class Broken:
        name, version_text, in_flight, serial, model = "m", "1.0.0", 0, True, None

        async def drain(self, timeout_s: float | None) -> bool:
            return True

        def close(self) -> None:
            raise RuntimeError("close exploded")

    async def scenario() -> None:
        unloader.retire([Broken()])  # type: ignore[list-item]
        await unloader.wait_idle()

    with caplog.at_level("ERROR", logger="amms.unloading"):
        asyncio.run(scenario())
    assert "model 'm' version 1.0.0: closing it failed" in caplog.text
    assert "close exploded" in caplog.text
    # the rest of the unload ran: the memory accounting was told, the model's lane was freed
    assert [version.name for version in closed] == ["m"]  # type: ignore[attr-defined]
    assert reconciler.lanes.models_on(0) == 0


@pytest.mark.slow
def test_add_model_killed_after_publishing_is_completed_by_a_retry(tmp_path: Path) -> None:
    project = Project.init(tmp_path / "project")
    model = save_pickle(tmp_path / "clf.pkl", iris_classifier())
    command = amms_argv("add-model", str(model), "--name", "w0", "--example", json.dumps(IRIS_ROWS[:1]))
    version = project.models / "w0" / "1.0.0"
    hit = False
    for _attempt in range(10):  # the window is a few milliseconds; it was hit 10 times out of 10
        process = subprocess.Popen(command, cwd=project.root, env=amms_env(), start_new_session=True)
        while process.poll() is None and not (version / "amms-version.json").exists():
            time.sleep(0.0005)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if version.is_dir() and load_config(project.config).entry("w0") is None:
            hit = True
            break
        project.write_entries([])  # too late (or too early): start again from nothing
        subprocess.run(["rm", "-rf", str(project.models / "w0")], check=True)
    assert hit, "never killed add-model between publishing and writing the entry"

    retried = project.run("add-model", str(model), "--name", "w0")
    assert retried.returncode == 0, retried.stderr
    assert "Completed an interrupted add-model" in retried.stdout
    assert load_config(project.config).entry("w0") is not None
    with running_server(project.config) as server, server.client() as client:
        assert client.post("/models/w0/predict", json={"inputs": IRIS_ROWS}).status_code == 200

    other = save_pickle(tmp_path / "other.pkl", iris_classifier(c=0.01))
    project.write_entries([])
    refused = project.run("add-model", str(other), "--name", "w0")  # another file: not ours to adopt
    assert refused.returncode == 1 and "already holds versions but 'w0' is not in amms.json" in refused.stderr


@pytest.mark.slow
def test_a_model_with_nothing_to_load_does_not_unready_the_server(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    with running_server(config, "--watch") as server, server.client() as client:
        assert client.get("/health/ready").json() == {"ready": True}
        add_entries(config, {"model_name": "newcomer"})  # models/newcomer does not exist
        assert wait_until(lambda: "newcomer" in client.get("/models").text, timeout=10)
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert list(ready.json()["unavailable"]) == ["newcomer"]
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/models/newcomer/predict", json={"inputs": [[1]]}).status_code == 503
        assert client.post("/models/iris/predict", json={"inputs": IRIS_ROWS}).status_code == 200


def test_start_up_readiness_still_waits_for_every_model(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    add_entries(config, {"model_name": "newcomer"})
    with running_server(config, ready=False) as server, server.client() as client:
        assert wait_until(lambda: client.get("/models/iris").json().get("ready"), timeout=20)
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and "newcomer" in ready.json()["error"]
