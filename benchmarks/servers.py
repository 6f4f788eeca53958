"""The servers under test: how to start each one on a free port, wait until it is ready, and stop it.

All servers start at once; only the one being measured has load, so none competes for the CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from workload import BenchModel

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ServerSpec:
    label: str
    command: list[str]
    ready_path: str
    protocol: str = "native"  # "native": POST /models/{name}/predict; "v2": the Open Inference Protocol
    env: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def floor_spec(models: list[BenchModel], port: int) -> ServerSpec:
    specs = [f"--model={m.name}={m.path}" for m in models]
    command = [sys.executable, str(HERE / "floor_app.py"), "--port", str(port), *specs]
    return ServerSpec("floor", command, "/health")


def amms_spec(label: str, config: Path, port: int, *extra: str) -> ServerSpec:
    command = [sys.executable, "-m", "amms_cli", "serve", "--config", str(config), "--port", str(port), *extra]
    return ServerSpec(label, [*command, "--log-level", "warning"], "/health/ready")


def mlserver_spec(label: str, venv: Path, folder: Path, models: list[BenchModel], port: int, batch: int) -> ServerSpec:
    """MLServer with its scikit-learn runtime; `batch` > 1 turns its adaptive batching on (5 ms)."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "host": "127.0.0.1",
        "debug": False,
        "gzip_enabled": False,
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    for model in models:
        model_dir = folder / model.name
        model_dir.mkdir(exist_ok=True)
        model_settings: dict[str, object] = {
            "name": model.name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(model.path), "version": "v1"},
        }
        if batch > 1:
            model_settings |= {"max_batch_size": batch, "max_batch_time": 0.005}
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    command = [str(venv / "bin" / "mlserver"), "start", str(folder)]
    return ServerSpec(label, command, "/v2/health/ready", protocol="v2")


def request_for(spec: ServerSpec, model: BenchModel) -> tuple[str, bytes]:
    """The path and body of a single-row predict request in the server's protocol."""
    if spec.protocol == "v2":
        tensor = {"name": "input-0", "shape": [1, len(model.row)], "datatype": "FP64", "data": model.row}
        return f"/v2/models/{model.name}/infer", json.dumps({"inputs": [tensor]}).encode()
    return f"/models/{model.name}/predict", json.dumps({"inputs": [model.row]}).encode()


@contextlib.contextmanager
def running(spec: ServerSpec, port: int, log_path: Path, timeout: float = 120.0) -> Iterator[str]:
    """Start the server, wait for its ready path, yield its base URL; always stop it."""
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
    try:
        wait_ready(process, url + spec.ready_path, timeout, log_path)
        yield url
    finally:
        stop(process)


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url}: not ready after {timeout:.0f} s; see {log_path}")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
