"""Benchmark amms against the thinnest FastAPI endpoint (the "floor") and, when available, MLServer.

    python benchmarks/run.py            # iris_lr and rf, 1 and 16 connections, 10 s per run
    python benchmarks/run.py --quick    # a smoke run: iris_lr only, 1 s per run

Trains the models, publishes them with `amms add-model` into a temporary repository, then starts
each server alone on a free port, drives it with single-row predict requests (wrk when installed,
otherwise an asyncio client) and prints one table. Ratios compare runs of the same model and
connection count. Set AMMS_BENCH_MLSERVER_VENV (or --mlserver-venv) to a virtualenv with
`mlserver mlserver-sklearn` installed to add MLServer to the table.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from loadgen import LoadResult, choose_generator, drive
from servers import ServerSpec, amms_spec, floor_spec, free_port, mlserver_spec, request_for, running
from workload import MODEL_NAMES, BenchModel, batched_config, build_repository, train_models

SpecFactory = Callable[[int], ServerSpec]  # port -> spec


@dataclass(frozen=True)
class Row:
    server: str
    model: str
    connections: int
    result: LoadResult


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per server and model")
    parser.add_argument("--connections", default="1,16", help="comma-separated connection counts (default 1,16)")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated: iris_lr, rf")
    parser.add_argument("--quick", action="store_true", help="smoke run: iris_lr only, 1 s runs, short warm-up")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--max-batch-size", type=int, default=32, help="amms batching: max_batch_size")
    parser.add_argument("--max-wait-ms", type=float, default=50.0, help="amms batching: max_wait_ms")
    parser.add_argument(
        "--mlserver-venv",
        type=Path,
        default=os.environ.get("AMMS_BENCH_MLSERVER_VENV") or None,
        help="virtualenv with mlserver and mlserver-sklearn (default: $AMMS_BENCH_MLSERVER_VENV)",
    )
    parser.add_argument("--workdir", type=Path, help="keep models, repository and server logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.models = 1.0, 0.5, "iris_lr"
    return args


def server_plan(args: argparse.Namespace, models: list[BenchModel], work: Path) -> tuple[list[SpecFactory], str]:
    """The servers to measure, in order, and a note on what was skipped."""
    config = build_repository(models, work / "repository")
    batched = batched_config(config, args.max_batch_size, args.max_wait_ms)
    plan: list[SpecFactory] = [
        lambda port: floor_spec(models, port),
        lambda port: amms_spec("amms", config, port),
        lambda port: amms_spec("amms-batched", batched, port),
    ]
    venv = args.mlserver_venv
    if venv is None or not (venv / "bin" / "mlserver").exists():
        why = "no venv given" if venv is None else f"no bin/mlserver in {venv}"
        return plan, f"MLServer skipped ({why}; set AMMS_BENCH_MLSERVER_VENV)"
    plan += [
        lambda port: mlserver_spec("mlserver", venv, work / "mlserver", models, port, batch=1),
        lambda port: mlserver_spec("mlserver-batched", venv, work / "mlserver-batched", models, port, batch=32),
    ]
    return plan, f"MLServer from {venv}"


def measure(spec: ServerSpec, port: int, models: list[BenchModel], args: argparse.Namespace, work: Path) -> list[Row]:
    rows = []
    connections = [int(c) for c in args.connections.split(",")]
    with running(spec, port, work / f"{spec.label}.log") as url:
        for model in models:
            path, body = request_for(spec, model)
            check_answer(url + path, body)
            if args.warmup > 0:
                drive(args.generator, url + path, body, max(connections), args.warmup)
            for count in connections:
                result = drive(args.generator, url + path, body, count, args.duration)
                rows.append(Row(spec.label, model.name, count, result))
                print(f"  {spec.label:<16} {model.name:<8} {count:>3} conns {result.rps:>9,.0f} req/s", file=sys.stderr)
    return rows


def check_answer(url: str, body: bytes) -> None:
    response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=10)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")


def ratio(rows: list[Row], row: Row, server: str) -> str:
    base = next((r for r in rows if (r.server, r.model, r.connections) == (server, row.model, row.connections)), None)
    if base is None or not base.result.rps:
        return "-"
    return f"{row.result.rps / base.result.rps:.2f}"


def format_table(rows: list[Row]) -> str:
    with_mlserver = any(r.server.startswith("mlserver") for r in rows)
    header = ["server", "model", "conns", "req/s", "p50 ms", "p99 ms", "errors", "vs floor"]
    header += ["vs MLServer"] if with_mlserver else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=lambda r: (r.model, r.connections)):
        result = row.result
        cells = [row.server, row.model, str(row.connections), f"{result.rps:,.0f}"]
        cells += [_ms(result.p50_ms), _ms(result.p99_ms), str(result.errors), ratio(rows, row, "floor")]
        if with_mlserver:
            peer = "mlserver-batched" if row.server.endswith("batched") else "mlserver"
            cells.append(ratio(rows, row, peer) if row.server.startswith("amms") else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
        rows = []
        for factory in plan:
            port = free_port()
            rows += measure(factory(port), port, models, args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    generator = "wrk (Lua POST script)" if args.generator == "wrk" else "python asyncio client (may limit req/s)"
    print(f"load generator: {generator}; {args.duration:g} s per run; {os.cpu_count()} CPUs shared with the servers")
    print(f"amms-batched: max_batch_size={args.max_batch_size}, max_wait_ms={args.max_wait_ms:g}; {note}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
