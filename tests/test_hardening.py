"""Hostile clients, hostile models and faults against a real server: contained, reported, server up."""

from __future__ import annotations

import json
import operator
import os
import pickle
import shutil
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from factories import IRIS_ROW, iris_classifier
from projects import SLOW_PREDICT, add_entries, custom_entry, make_project, publish_broken, publish_custom
from server_support import running_server, wait_until

NOT_JSON = """
class Model:
    def load(self, path):
        pass

    def predict(self, inputs):
        return [object()]
"""

SLOW_LOAD = """
import time

class Model:
    def load(self, path):
        time.sleep(600)

    def predict(self, inputs):
        return inputs
"""


class RaisesOnLoad:
    def __reduce__(self) -> tuple[object, tuple[int, int]]:
        return (operator.truediv, (1, 0))


def version_state(client: httpx.Client, name: str, version: str) -> dict[str, object]:
    versions = client.get(f"/models/{name}").json().get("versions", [])
    return next((v for v in versions if v["version"] == version), {})


def test_slow_clients_are_cut_off_without_blocking_others(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    with running_server(config, "--request-timeout", "1.5") as server, server.client() as client:
        port = int(server.url.rsplit(":", 1)[1])
        slow_headers = socket.create_connection(("127.0.0.1", port))
        slow_headers.sendall(b"POST /models/iris/predict HTTP/1.1\r\nHost: x\r\n")
        slow_body = socket.create_connection(("127.0.0.1", port))
        slow_body.sendall(b'POST /models/iris/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inp')
        started = time.monotonic()
        assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).status_code == 200
        assert time.monotonic() - started < 1.0  # the stalled clients do not block others
        for stalled in (slow_headers, slow_body):
            stalled.settimeout(5)
            try:
                for _ in range(4):  # keep trickling; the server must still close the connection
                    stalled.sendall(b"X")
                    time.sleep(0.3)
                closed = stalled.recv(1024) == b""
            except (ConnectionResetError, BrokenPipeError):
                closed = True
            stalled.close()
            assert closed
        assert time.monotonic() - started < 4.0
        assert "request not received within" in server.log()


def test_a_kept_alive_connection_that_stalls_on_its_next_request_is_cut_off(tmp_path: Path) -> None:
    """The deadline restarts with each request on a connection: a quick first request, an idle pause
    shorter than the keep-alive timeout, then a second request that trickles in and is cut off."""
    config = make_project(tmp_path, {"iris": iris_classifier()})
    body = json.dumps({"inputs": [IRIS_ROW]}).encode()
    request = b"POST /models/iris/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with running_server(config, "--request-timeout", "1.5") as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.settimeout(5)
            connection.sendall(request)
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(1.0)  # idle, not receiving: does not count against the next request
            connection.sendall(b"POST /models/iris/predict HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            closed = False
            try:
                for _ in range(12):  # trickle for up to ~3.6 s
                    connection.sendall(b"X-Slow: 1\r\n")
                    time.sleep(0.3)
            except (ConnectionResetError, BrokenPipeError):
                closed = True
            if not closed:
                try:
                    while connection.recv(4096):  # the rest of the first response, if unread; then the close
                        pass
                    closed = True
                except ConnectionResetError:
                    closed = True
            assert closed
            assert 1.2 < time.monotonic() - started < 3.0  # cut off ~1.5 s after its first byte, not at once
        assert "request not received within" in server.log()


def test_sigterm_under_load_completes_in_flight_requests_then_exits_0(tmp_path: Path) -> None:
    config = make_project(tmp_path, {})
    publish_custom(tmp_path / "models" / "slow", "1.0.0", SLOW_PREDICT)
    add_entries(config, custom_entry("slow"))
    with running_server(config, "--predict-threads", "8") as server:
        with ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(httpx.post, f"{server.url}/models/slow/predict", json={"inputs": [i]}, timeout=10)
                for i in range(6)
            ]
            time.sleep(0.4)
            os.killpg(server.process.pid, signal.SIGTERM)
            responses = [future.result() for future in futures]
        assert [r.status_code for r in responses] == [200] * 6
        assert [r.json()["outputs"] for r in responses] == [[i] for i in range(6)]
        assert server.process.wait(15) == 0


def test_hostile_models_are_contained_and_reported(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    models = tmp_path / "models"
    (models / "raises").mkdir()
    broken = tmp_path / "raises.pkl"
    broken.write_bytes(pickle.dumps(RaisesOnLoad()))
    publish_custom(models / "notjson", "1.0.0", NOT_JSON, example=[1])
    publish_custom(models / "notjson_unchecked", "1.0.0", NOT_JSON)
    publish_custom(models / "hangs", "1.0.0", SLOW_LOAD)
    add_entries(
        config,
        custom_entry("notjson"),
        custom_entry("notjson_unchecked"),
        custom_entry("hangs", load_timeout_s=2),
    )
    with running_server(config, ready=False) as server, server.client() as client:
        assert wait_until(lambda: version_state(client, "hangs", "1.0.0").get("state") == "FAILED", 15)
        assert "load_timeout_s=2" in str(version_state(client, "hangs", "1.0.0")["reason"])
        assert "cannot be sent as JSON" in str(version_state(client, "notjson", "1.0.0")["reason"])

        unchecked = client.post("/models/notjson_unchecked/predict", json={"inputs": [1]})
        assert unchecked.status_code == 500 and "cannot be sent as JSON" in unchecked.json()["error"]
        assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).status_code == 200
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200
    assert server.process.returncode == 0  # the hung load did not keep the process alive


def test_pickle_that_raises_on_load_fails_its_version_only(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})

    with running_server(config, "--watch") as server, server.client() as client:
        publish_broken(tmp_path / "models" / "iris", "1.0.1", pickle.dumps(RaisesOnLoad()))
        assert wait_until(lambda: version_state(client, "iris", "1.0.1").get("state") == "FAILED", 5)
        assert "ZeroDivisionError" in str(version_state(client, "iris", "1.0.1")["reason"])
        assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).json()["version"] == "1.0.0"


def test_allow_frameworks_refuses_formats_that_run_code(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    with running_server(config, "--allow-frameworks", "onnx", ready=False) as server, server.client() as client:
        assert wait_until(lambda: version_state(client, "iris", "1.0.0").get("state") == "FAILED", 10)
        reason = str(version_state(client, "iris", "1.0.0")["reason"])
        assert "loader 'pickle' is refused by --allow-frameworks onnx" in reason
        assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).status_code == 503


def test_manifest_naming_files_outside_its_folder_is_refused(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    version = tmp_path / "models" / "iris" / "1.0.0"
    manifest = json.loads((version / "amms-version.json").read_text())
    (tmp_path / "outside.pkl").write_bytes((version / "iris.pkl").read_bytes())
    manifest["artifacts"][0]["name"] = "../../../outside.pkl"
    manifest["entrypoint"] = "../../../outside.pkl"
    (version / "amms-version.json").write_text(json.dumps(manifest))
    with running_server(config, ready=False) as server, server.client() as client:
        assert wait_until(lambda: version_state(client, "iris", "1.0.0").get("state") == "FAILED", 10)
        assert "outside its folder" in str(version_state(client, "iris", "1.0.0")["reason"])


def test_symlinked_artifact_is_refused(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    version = tmp_path / "models" / "iris" / "1.0.0"
    target = tmp_path / "elsewhere.pkl"
    (version / "iris.pkl").rename(target)
    (version / "iris.pkl").symlink_to(target)
    with running_server(config, ready=False) as server, server.client() as client:
        assert wait_until(lambda: version_state(client, "iris", "1.0.0").get("state") == "FAILED", 10)
        assert "symlink" in str(version_state(client, "iris", "1.0.0")["reason"])


def test_version_folder_symlinked_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"iris": iris_classifier()})
    outside = tmp_path / "outside" / "1.0.1"
    outside.parent.mkdir()
    shutil.copytree(tmp_path / "models" / "iris" / "1.0.0", outside)
    manifest = json.loads((outside / "amms-version.json").read_text())
    (outside / "amms-version.json").write_text(json.dumps({**manifest, "version": "1.0.1"}))
    (tmp_path / "models" / "iris" / "1.0.1").symlink_to(outside)
    with running_server(config) as server, server.client() as client:
        state = version_state(client, "iris", "1.0.1")
        assert state["state"] == "UNLOADED" and "outside its model folder" in str(state["reason"])
        assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).json()["version"] == "1.0.0"
