"""Run a real `amms serve` process on a free 127.0.0.1 port for end-to-end tests; always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


def metric_values(metrics_text: str, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
    """One sample of a /metrics page (e.g. `amms_requests_total`), keyed by the given labels' values."""
    return {
        tuple(found.labels[label] for label in labels): found.value
        for family in text_string_to_metric_families(metrics_text)
        for found in family.samples
        if found.name == sample
    }


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@contextlib.contextmanager
def running_server(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: bool = True,
    timeout: float = 60.0,
) -> Iterator[ServerProcess]:
    """Start `amms serve --config CONFIG --port <free> ARGS...`; wait for /health/ready (or /health/live
    when `ready` is False); stop it (SIGTERM, then SIGKILL) whatever happens."""
    port = free_port()
    log_path = config.parent / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "amms_cli",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        path = "/health/ready" if ready else "/health/live"

        def answered() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"amms serve exited with {process.returncode}:\n{server.log()}")
            try:
                return httpx.get(server.url + path, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(answered, timeout):
            raise RuntimeError(f"amms serve did not answer {path} within {timeout} s:\n{server.log()}")
        yield server
    finally:
        stop(process)


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
