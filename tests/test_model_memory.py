"""Each loaded version's memory, measured as the process's resident growth across its load: shown per
version and per model in GET /models/{name} and `amms status --url`, and in /metrics with the loads
by outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import IRIS_ROWS, iris_classifier
from projects import RAISES_IN_LOAD, add_entries, custom_entry, make_project, publish_custom, run_amms
from server_support import ServerProcess, metric_values, running_server, wait_until

MIB = 2**20

HOLDS_120_MIB = """
class Model:
    def load(self, path):
        self.blob = bytearray(120 * 1024 * 1024)
        self.blob[::4096] = b"x" * len(self.blob[::4096])  # touched, so resident

    def predict(self, inputs):
        return inputs
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder: Path = tmp_path_factory.mktemp("memory")
    config = make_project(folder, {"iris": iris_classifier()})
    publish_custom(folder / "models" / "big", "1.0.0", HOLDS_120_MIB)
    publish_custom(folder / "models" / "broken", "1.0.0", RAISES_IN_LOAD)
    add_entries(config, custom_entry("big"), custom_entry("broken"))
    with running_server(config, ready=False) as running:
        assert wait_until(lambda: httpx.get(f"{running.url}/models/big", timeout=5).json()["ready"], timeout=30)
        yield running


def test_each_version_reports_what_its_load_added(server: ServerProcess) -> None:
    with server.client() as client:
        big = client.get("/models/big").json()
        iris = client.get("/models/iris").json()
    (version,) = big["versions"]
    assert 110 * MIB <= version["memory_bytes"] <= 200 * MIB, version
    assert big["memory_bytes"] == version["memory_bytes"]
    assert iris["memory_bytes"] < 30 * MIB


def test_metrics_show_resident_bytes_and_loads_by_outcome(server: ServerProcess) -> None:
    with server.client() as client:
        assert client.post("/models/iris/predict", json={"inputs": IRIS_ROWS}).status_code == 200
        wait_until(lambda: "FAILED" in client.get("/models/broken").text, timeout=10)
        text = client.get("/metrics").text
    resident = metric_values(text, "amms_model_resident_bytes", "model")
    assert 110 * MIB <= resident[("big",)] <= 200 * MIB
    assert resident[("broken",)] == 0
    loads = metric_values(text, "amms_model_loads_total", "model", "outcome")
    assert loads[("big", "loaded")] == 1 and loads[("broken", "failed")] == 1


def test_status_shows_memory(server: ServerProcess, tmp_path: Path) -> None:
    shown = run_amms("status", "--url", server.url, cwd=tmp_path, check=True).stdout
    big_line = next(line for line in shown.splitlines() if "big" in line)
    assert " MiB" in big_line


PEAK_PROBE = """
import json
from amms_cli.loaders import footprint

block = bytearray(64 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])  # touched, so resident
del block  # a mapping of its own: gone from the resident size at once
after_free = footprint.resident_bytes()
peak = footprint.resident_peak_bytes()
footprint.restart_resident_peak()
print(json.dumps({"after_free": after_free, "peak": peak, "restarted": footprint.resident_peak_bytes()}))
"""


def test_the_resident_peak_keeps_what_was_freed_until_restarted() -> None:
    """What a memory budget's overhead is measured from (serving/model_cache.py): the most the process
    held since the last restart, including memory freed since; restarting starts from what it holds."""
    result = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout)
    assert figures["peak"] - figures["after_free"] >= 60 * MIB, figures
    assert abs(figures["restarted"] - figures["after_free"]) < 8 * MIB, figures
