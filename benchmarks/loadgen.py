"""Load generation: the same closed-loop load (N keep-alive connections, each sending the next
request as soon as the previous answer arrives) from `wrk` with a Lua POST script when it is on
PATH, or from a small asyncio HTTP/1.1 client otherwise; and an open loop (requests arriving at a
set rate, whatever the server's pace) for latency at a given traffic."""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
COLD_START = b"server-timing: cold-start"  # amms' header on a response that waited for its model to load


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def choose_generator(preference: str) -> str:
    """'wrk' or 'python'; 'auto' takes wrk when it is installed."""
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if preference == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or pass --load-generator python")
    return preference


def drive(generator: str, url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    if generator == "wrk":
        return run_wrk(url, body, connections, seconds)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_python(url, body, connections, seconds))
    return uvloop.run(run_python(url, body, connections, seconds))


# wrk


def lua_script(body: bytes) -> str:
    text = body.decode()
    assert "]==]" not in text
    return f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{text}]==]\n'


def run_wrk(url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="amms-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_script(body))
        threads = min(connections, 2)
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
        done = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> LoadResult:
    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    requests = int(number(r"(\d+) requests in"))
    rate = number(r"Requests/sec:\s+([\d.]+)")
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(number(r"Non-2xx or 3xx responses: (\d+)"))
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    seconds = requests / rate if rate else 0.0
    return LoadResult(requests, seconds, latency("50"), latency("99"), errors)


# Python: one asyncio task per connection, raw HTTP/1.1 keep-alive


def post_request(url: str, body: bytes) -> bytes:
    """The raw HTTP/1.1 bytes of a JSON POST of `body` to `url`."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run_python(url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    same = itertools.repeat((0, post_request(url, body)))
    loops = await asyncio.gather(*(closed_loop(host, port, same, deadline, 2.0) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies = np.asarray([answer.seconds for loop in loops for answer in loop.answers], dtype=np.float64) * 1e3
    errors = sum(loop.failed for loop in loops)
    if latencies.size == 0:
        return LoadResult(0, elapsed, float("nan"), float("nan"), errors)
    p50, p99 = np.percentile(latencies, [50, 99])
    return LoadResult(int(latencies.size), elapsed, float(p50), float(p99), errors)


@dataclass(frozen=True)
class Answer:
    tag: int  # what the caller sent with the request (e.g. which model)
    seconds: float
    cold: bool = False  # the server says it waited for the model to load (its Server-Timing header)


@dataclass
class Loop:
    answers: list[Answer]  # every request answered (2xx or not), in order
    failed: int  # non-2xx answers, socket errors and timeouts


class Connection:
    """One keep-alive connection that sends a request and reads its answer, reopened after a failure."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        return self.streams

    async def send(self, loop: Loop, tag: int, request: bytes, since: float) -> None:
        """Send `request` and record its answer in `loop`, its latency counted from `since`."""
        reader, writer = await self.open()
        writer.write(request)
        try:
            status, head = await asyncio.wait_for(read_response(reader), timeout=self.timeout_s)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            loop.failed += 1
            self.close()
            return
        loop.answers.append(Answer(tag, time.perf_counter() - since, COLD_START in head.lower()))
        loop.failed += not 200 <= status < 300

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def closed_loop(
    host: str, port: int, requests: Iterable[tuple[int, bytes]], deadline: float, timeout_s: float
) -> Loop:
    """One keep-alive connection sending each (tag, request) as soon as the previous one is answered,
    until `deadline`; a timed-out or broken connection is counted as failed and reopened."""
    loop, connection = Loop([], 0), Connection(host, port, timeout_s)
    await connection.open()
    try:
        for tag, request in requests:
            if (now := time.perf_counter()) >= deadline:
                break
            await connection.send(loop, tag, request, now)
    finally:
        connection.close()
    return loop


async def open_loop(
    host: str,
    port: int,
    requests: Iterable[tuple[int, bytes]],
    rate: float,
    deadline: float,
    connections: int,
    timeout_s: float,
) -> Loop:
    """Requests arriving `rate` a second at random (Poisson) until `deadline`, whatever the server's
    pace, each sent on the first free one of `connections` keep-alive connections. A latency counts
    from the request's arrival, so time spent waiting for a free connection is the server's too (a
    closed loop would hide it: a slow server is sent fewer requests)."""
    arrivals: asyncio.Queue[tuple[int, bytes, float] | None] = asyncio.Queue()

    async def sender(connection: Connection) -> Loop:
        loop = Loop([], 0)
        try:
            while (arrival := await arrivals.get()) is not None:
                await connection.send(loop, *arrival)
        finally:
            connection.close()
        return loop

    # every connection open before the first arrival: opening one is not the server's time
    opened = [Connection(host, port, timeout_s) for _ in range(connections)]
    await asyncio.gather(*(connection.open() for connection in opened))
    senders = [asyncio.create_task(sender(connection)) for connection in opened]
    gaps = np.random.default_rng(0).exponential(1.0 / rate, size=int(rate * (deadline - time.perf_counter())) * 2 + 16)
    arrives = time.perf_counter()
    for (tag, request), gap in zip(requests, gaps, strict=False):
        arrives += float(gap)
        if arrives >= deadline:
            break
        await asyncio.sleep(arrives - time.perf_counter())
        arrivals.put_nowait((tag, request, arrives))
    for _ in senders:
        arrivals.put_nowait(None)
    loops = await asyncio.gather(*senders)
    return Loop([answer for loop in loops for answer in loop.answers], sum(loop.failed for loop in loops))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and the head (status line and headers) of one response; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    await reader.readexactly(int(length.group(1)) if length else 0)
    return status, head
