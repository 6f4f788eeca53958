"""The servers under test: how to start each one on a free port, wait until it is ready, and stop it.

All servers start at once; only the one being measured has load, so none competes for the CPU.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workload import BenchModel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # one start / wait / stop helper for the tests and benchmarks
from server_support import free_port, running_process  # noqa: E402


@dataclass(frozen=True)
class ServerSpec:
    label: str
    command: list[str]
    ready_path: str
    protocol: str = "native"  # "native": POST /models/{name}/predict; "v2": the Open Inference Protocol
    env: dict[str, str] = field(default_factory=dict)


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
        if isinstance(model.row, dict):  # decode requests with the pandas codec
            model_settings["parameters"] = {**model_settings["parameters"], "content_type": "pd"}  # type: ignore[dict-item]
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    command = [str(venv / "bin" / "mlserver"), "start", str(folder)]
    return ServerSpec(label, command, "/v2/health/ready", protocol="v2")


def request_for(spec: ServerSpec, model: BenchModel) -> tuple[str, bytes]:
    """The path and body of a single-row predict request in the server's protocol."""
    if spec.protocol == "v2":
        path = f"/v2/models/{model.name}/infer"
        if isinstance(model.row, dict):
            return path, json.dumps(pandas_codec_request(model.row)).encode()
        tensor = {"name": "input-0", "shape": [1, len(model.row)], "datatype": "FP64", "data": model.row}
        return path, json.dumps({"inputs": [tensor]}).encode()
    return f"/models/{model.name}/predict", json.dumps({"inputs": [model.row]}).encode()


def pandas_codec_request(record: dict[str, object]) -> dict[str, object]:
    """One record as MLServer's PandasCodec.encode_request(df, use_bytes=False) writes it."""
    datatypes = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES", type(None): "FP64"}
    inputs = []
    for name, value in record.items():
        tensor: dict[str, object] = {"name": name, "shape": [1, 1], "datatype": datatypes[type(value)], "data": [value]}
        if isinstance(value, str):
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


@contextlib.contextmanager
def running(spec: ServerSpec, port: int, log_path: Path, timeout: float = 120.0) -> Iterator[str]:
    """Start the server, wait for its ready path, yield its base URL; always stop it."""
    url = f"http://127.0.0.1:{port}"
    with running_process(
        spec.command, ready_url=url + spec.ready_path, log_path=log_path, env=spec.env, timeout=timeout
    ):
        yield url
