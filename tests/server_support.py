"""Real server processes on free 127.0.0.1 ports for end-to-end tests (and the benchmarks): started,
waited for, and always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@contextlib.contextmanager
def running_process(
    command: list[str], *, ready_url: str, log_path: Path, env: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server (its output to `log_path`), wait until GET `ready_url` answers 200, and stop it
    (SIGTERM to its process group, then SIGKILL) whatever happens. A server that exits or is not ready
    in time fails with its log. Also used by benchmarks/servers.py."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:

        def answered() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                return httpx.get(ready_url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(answered, timeout):
            raise RuntimeError(f"{ready_url} did not answer 200 within {timeout} s:\n{_tail(log_path)}")
        yield process
    finally:
        stop(process)


def _tail(log_path: Path, lines: int = 60) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_server(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: bool = True,
    timeout: float = 60.0,
) -> Iterator[ServerProcess]:
    """`amms serve --config CONFIG --port <free> ARGS...`, ready once /health/ready answers (or
    /health/live when `ready` is False)."""
    port = free_port()
    log_path = config.parent / f"server-{port}.log"
    command = [sys.executable, "-m", "amms_cli", "serve", "--config", str(config), "--host", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}"
    ready_url = url + ("/health/ready" if ready else "/health/live")
    with running_process(
        [*command, "--port", str(port), *args], ready_url=ready_url, log_path=log_path, env=env, timeout=timeout
    ) as process:
        yield ServerProcess(url, process, log_path)


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
