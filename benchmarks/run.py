"""Benchmark amms against the thinnest FastAPI endpoint (the "floor") and, when available, MLServer.

    python benchmarks/run.py                      # iris_lr, rf and table; 1, 8 and 64 connections; 3 rounds of 10 s
    python benchmarks/run.py --connections 1,16   # other connection counts
    python benchmarks/run.py --quick              # a smoke run: iris_lr only, 1 round of 1 s

Trains the models and publishes them with `amms add-model` into a temporary repository, then
starts every server at once on its own free port (idle servers cost next to nothing) and drives
them one at a time with single-row predict requests (wrk when installed, otherwise an asyncio
client). Runs are interleaved in rounds, the server order rotating each round, and each run
starts once the machine is idle again. A ratio pairs the rounds (each server against the other as
measured in the same round), so a machine that slows down or speeds up between rounds shifts both
alike instead of skewing the ratio; it is the geometric mean of the per-round ratios, and the req/s
shown is each server's geometric mean over its rounds, so the ratio column is exactly the quotient of
the req/s columns. Latencies are those of each server's median round. Ratios compare the same model
and connection count. Set AMMS_BENCH_MLSERVER_VENV (or
--mlserver-venv) to a virtualenv with `mlserver mlserver-sklearn` installed to add MLServer. After
the table, each performance target of the project is printed with the ratio measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from loadgen import LoadResult, choose_generator, drive
from servers import ServerSpec, amms_spec, floor_spec, free_port, mlserver_spec, request_for, running
from workload import MODEL_NAMES, BenchModel, batched_config, build_repository, train_models

SpecFactory = Callable[[int], ServerSpec]  # port -> spec
Servers = dict[str, tuple[ServerSpec, str]]  # label -> (spec, base URL)


@dataclass(frozen=True)
class Row:
    server: str
    model: str
    connections: int
    result: LoadResult  # the median round (its latencies; errors of every round)
    round_rps: tuple[float, ...]  # req/s of every round, in round order

    @property
    def rps(self) -> float:
        """The geometric mean over rounds: what the ratios are quotients of."""
        return geometric_mean(self.round_rps) or self.result.rps


@dataclass(frozen=True)
class Target:
    what: str
    value: float | None  # None: not measured in this run
    goal: float
    at_most: bool = False  # the value must stay at or below the goal (latency), not reach it
    rounds: tuple[float, ...] = ()  # a ratio's value in each round

    def line(self) -> str:
        if self.value is None:
            return f"  -      {self.what}: not measured in this run"
        met = self.value <= self.goal if self.at_most else self.value >= self.goal
        sign = "<=" if self.at_most else ">="
        line = f"  {'met   ' if met else 'MISSED'} {self.what}: {self.value:.2f} (target {sign} {self.goal:g})"
        if len(self.rounds) > 1:
            line += "; rounds " + " ".join(f"{r:.2f}" for r in self.rounds)
        return line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, paired for the ratios (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per server and model")
    parser.add_argument("--connections", default="1,8,64", help="comma-separated connection counts (default 1,8,64)")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated: iris_lr, rf, table")
    parser.add_argument("--quick", action="store_true", help="smoke run: iris_lr only, 1 round of 1 s, short warm-up")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--max-batch-size", type=int, default=32, help="amms batching: max_batch_size")
    parser.add_argument("--max-wait-ms", type=float, default=50.0, help="amms batching: max_wait_ms (default 50)")
    parser.add_argument(
        "--no-workers", dest="workers", action="store_false", help="skip amms --workers 2 (measured by default)"
    )
    parser.add_argument(
        "--mlserver-venv",
        type=Path,
        default=os.environ.get("AMMS_BENCH_MLSERVER_VENV") or None,
        help="virtualenv with mlserver and mlserver-sklearn (default: $AMMS_BENCH_MLSERVER_VENV)",
    )
    parser.add_argument("--workdir", type=Path, help="keep models, repository and server logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds, args.models, args.workers = 1.0, 0.5, 1, "iris_lr", False
    return args


def server_plan(args: argparse.Namespace, models: list[BenchModel], work: Path) -> tuple[list[SpecFactory], str]:
    """The servers to measure and a note on what was skipped."""
    config = build_repository(models, work / "repository")
    batched = batched_config(config, args.max_batch_size, args.max_wait_ms)
    plan: list[SpecFactory] = [
        lambda port: floor_spec(models, port),
        lambda port: amms_spec("amms", config, port),
        lambda port: amms_spec("amms-batched", batched, port),
    ]
    if args.workers:
        plan.append(lambda port: amms_spec("amms-2workers", config, port, "--workers", "2"))
    venv = args.mlserver_venv
    if venv is None or not (venv / "bin" / "mlserver").exists():
        why = "no venv given" if venv is None else f"no bin/mlserver in {venv}"
        return plan, f"MLServer skipped ({why}; set AMMS_BENCH_MLSERVER_VENV)"
    plan += [
        lambda port: mlserver_spec("mlserver", venv, work / "mlserver", models, port, batch=1),
        lambda port: mlserver_spec("mlserver-batched", venv, work / "mlserver-batched", models, port, batch=32),
    ]
    return plan, f"MLServer from {venv}"


def start_all(plan: list[SpecFactory], work: Path, stack: contextlib.ExitStack) -> Servers:
    """Start every server; the stack stops them all."""
    servers = {}
    for factory in plan:
        port = free_port()
        spec = factory(port)
        servers[spec.label] = (spec, stack.enter_context(running(spec, port, work / f"{spec.label}.log")))
        print(f"  started {spec.label}", file=sys.stderr)
    return servers


def measure(servers: Servers, models: list[BenchModel], args: argparse.Namespace) -> list[Row]:
    """Every (model, connections, server) run once per round; the server order rotates each round."""
    connections = [int(c) for c in args.connections.split(",")]
    labels = list(servers)
    for model in models:
        for spec, url in servers.values():
            path, body = request_for(spec, model)
            check_answer(url + path, body)
            if args.warmup > 0:
                drive(args.generator, url + path, body, max(connections), args.warmup)
    runs: dict[tuple[str, str, int], list[LoadResult]] = {}
    for round_number in range(args.rounds):
        order = labels[round_number % len(labels) :] + labels[: round_number % len(labels)]
        for model in models:
            for count in connections:
                for label in order:
                    spec, url = servers[label]
                    path, body = request_for(spec, model)
                    settle()
                    result = drive(args.generator, url + path, body, count, args.duration)
                    runs.setdefault((label, model.name, count), []).append(result)
                    print(
                        f"  round {round_number + 1}/{args.rounds} {label:<16} {model.name:<8} {count:>3} conns "
                        f"{result.rps:>9,.0f} req/s",
                        file=sys.stderr,
                    )
    return [
        Row(label, model, count, median_run(results), tuple(r.rps for r in results))
        for (label, model, count), results in runs.items()
    ]


def settle(busy_percent: float = 20.0, longest_s: float = 15.0) -> None:
    """Wait until the machine is idle: a server may still be working off the queue of the last run
    (MLServer's batching keeps answering timed-out requests), which would slow the next one."""
    deadline = time.monotonic() + longest_s
    while psutil.cpu_percent(interval=0.3) > busy_percent and time.monotonic() < deadline:
        pass


def median_run(results: list[LoadResult]) -> LoadResult:
    """The run with the median throughput (its own latencies), with the errors of every run."""
    ordered = sorted(results, key=lambda r: r.rps)
    middle = ordered[(len(ordered) - 1) // 2]
    errors = sum(r.errors for r in results)
    return LoadResult(middle.requests, middle.seconds, middle.p50_ms, middle.p99_ms, errors)


def check_answer(url: str, body: bytes) -> None:
    response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=10)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")


def find_row(rows: list[Row], server: str, model: str, connections: int) -> Row | None:
    key = (server, model, connections)
    return next((r for r in rows if (r.server, r.model, r.connections) == key), None)


def find(rows: list[Row], server: str, model: str, connections: int) -> LoadResult | None:
    row = find_row(rows, server, model, connections)
    return None if row is None else row.result


def round_ratios(rows: list[Row], server: str, base: str, model: str, connections: int) -> tuple[float, ...]:
    """server's req/s over base's, round by round (both were measured in each round)."""
    mine, theirs = find_row(rows, server, model, connections), find_row(rows, base, model, connections)
    if mine is None or theirs is None:
        return ()
    return tuple(m / t for m, t in zip(mine.round_rps, theirs.round_rps, strict=True) if t)


def geometric_mean(values: tuple[float, ...]) -> float | None:
    """The geometric mean, or None without (positive) values: the mean of per-round ratios that equals
    the ratio of the two servers' means, so the table's columns agree."""
    positive = [value for value in values if value > 0]
    return statistics.geometric_mean(positive) if positive else None


def rps_ratio(rows: list[Row], server: str, base: str, model: str, connections: int) -> float | None:
    return geometric_mean(round_ratios(rows, server, base, model, connections))


def ratio_target(what: str, goal: float, rows: list[Row], server: str, base: str, model: str, count: int) -> Target:
    ratios = round_ratios(rows, server, base, model, count)
    return Target(what, geometric_mean(ratios), goal, rounds=ratios)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(rows: list[Row]) -> str:
    with_mlserver = any(r.server.startswith("mlserver") for r in rows)
    header = ["server", "model", "conns", "req/s", "p50 ms", "p99 ms", "errors", "vs floor"]
    header += ["vs MLServer"] if with_mlserver else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=lambda r: (r.model, r.connections)):
        result = row.result
        cells = [row.server, row.model, str(row.connections), f"{row.rps:,.0f}"]
        cells += [_ms(result.p50_ms), _ms(result.p99_ms), str(result.errors)]
        cells.append(_cell(rps_ratio(rows, row.server, "floor", row.model, row.connections)))
        if with_mlserver:
            peer = "mlserver-batched" if row.server.endswith("batched") else "mlserver"
            mine = row.server.startswith("amms")
            cells.append(_cell(rps_ratio(rows, row.server, peer, row.model, row.connections)) if mine else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[Target]:
    """The performance targets of the project, each with the value this run measured."""
    found = [ratio_target(f"iris_lr {c} conn: amms / floor", 0.9, rows, "amms", "floor", "iris_lr", c) for c in (1, 8)]
    found += [
        ratio_target(f"{m} 1 conn, batching on: amms-batched / floor", 0.9, rows, "amms-batched", "floor", m, 1)
        for m in ("iris_lr", "rf")
    ]
    found += [
        ratio_target(
            f"rf {c} conns: amms-batched / mlserver-batched", goal, rows, "amms-batched", "mlserver-batched", "rf", c
        )
        for c, goal in ((8, 1.3), (64, 1.2))
    ]
    rf_64 = find(rows, "amms-batched", "rf", 64)
    found.append(Target("rf 64 conns, amms-batched p99 ms", None if rf_64 is None else rf_64.p99_ms, 100, True))
    found.append(Target("rf 64 conns, amms-batched errors", None if rf_64 is None else rf_64.errors, 0, True))
    most = max((r.connections for r in rows if r.model == "rf"), default=64)  # the label when rf was not run
    found.append(ratio_target(f"rf {most} conns: amms --workers 2 / 1", 1.0, rows, "amms-2workers", "amms", "rf", most))
    return found + default_targets(rows) + table_targets(rows)


def default_targets(rows: list[Row]) -> list[Target]:
    """Fast by default (issue 17): the plain `amms` server, with no batching settings, batches the
    models whose rows are independent: well ahead of the floor under load, free at one connection."""
    return [
        ratio_target("rf 8 conns, defaults: amms / floor", 3.0, rows, "amms", "floor", "rf", 8),
        ratio_target("iris_lr 1 conn, defaults: amms / floor", 0.95, rows, "amms", "floor", "iris_lr", 1),
    ]


def table_targets(rows: list[Row]) -> list[Target]:
    """The DataFrame pipeline (issue 16): at the floor alone, batching free at 1 connection, and
    batching well ahead of MLServer's under load."""
    found = [
        ratio_target("table 1 conn: amms / floor", 1.0, rows, "amms", "floor", "table", 1),
        ratio_target(
            "table 1 conn, batching on: amms-batched / floor", 0.95, rows, "amms-batched", "floor", "table", 1
        ),
    ]
    found += [
        ratio_target(
            f"table {c} conns: amms-batched / mlserver-batched",
            1.5,
            rows,
            "amms-batched",
            "mlserver-batched",
            "table",
            c,
        )
        for c in (8, 64)
    ]
    table_64 = find(rows, "amms-batched", "table", 64)
    found.append(
        Target("table 64 conns, amms-batched p99 ms", None if table_64 is None else table_64.p99_ms, 100, True)
    )
    found.append(Target("table 64 conns, amms-batched errors", None if table_64 is None else table_64.errors, 0, True))
    return found


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.generator = choose_generator(args.load_generator)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="amms-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        models = train_models(args.models.split(","), work / "artifacts")
        plan, note = server_plan(args, models, work)
        with contextlib.ExitStack() as stack:
            rows = measure(start_all(plan, work, stack), models, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    generator = "wrk (Lua POST script)" if args.generator == "wrk" else "python asyncio client (may limit req/s)"
    print(f"load generator: {generator}; {args.rounds} round(s) of {args.duration:g} s per run; ", end="")
    print("req/s and ratios: geometric means over the rounds, ratios paired by round; ", end="")
    print("latencies: median round; ", end="")
    print(f"{os.cpu_count()} CPUs shared with the servers")
    print(f"amms-batched: max_batch_size={args.max_batch_size}, max_wait_ms={args.max_wait_ms:g}; {note}")
    print(format_table(rows))
    print("targets:")
    for target in targets(rows):
        print(target.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
