"""Memory under sustained load: RSS of `amms serve` with both benchmark models (iris_lr and rf,
adaptive batching on) after warm-up, then after 100,000 more predict requests; the target is at
most 10% growth.

    python benchmarks/memory.py                  # 100,000 requests after a 5,000-request warm-up
    python benchmarks/memory.py --requests 20000

Load comes in alternating slices (iris_lr, then rf) from wrk when installed, otherwise from the
asyncio client, at 8 connections. RSS covers the server process and its children.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import psutil
from loadgen import choose_generator, drive
from servers import amms_spec, free_port, request_for, running
from workload import batched_config, build_repository, train_models

GOAL = 1.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="requests after warm-up (default 100,000)")
    parser.add_argument("--warmup-requests", type=int, default=5_000, help="requests before the first RSS reading")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--slice", type=float, default=3.0, help="seconds per load slice (default 3)")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    return parser.parse_args(argv)


def server_rss_mb(port: int) -> float:
    """RSS of the `amms serve` process started for `port` and all its children."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "amms_cli" in command and str(port) in command:
            family = [process, *process.children(recursive=True)]
            return sum(p.memory_info().rss for p in family) / 2**20
    raise SystemExit(f"no amms server process for port {port}")


def load(urls: list[tuple[str, bytes]], generator: str, connections: int, seconds: float, total: int) -> int:
    """Drive the (url, body) pairs in turn until `total` requests were answered; returns the count."""
    done = errors = 0
    turn = 0
    while done < total:
        url, body = urls[turn % len(urls)]
        result = drive(generator, url, body, connections, seconds)
        done += result.requests
        errors += result.errors
        turn += 1
        print(f"  {done:>9,} requests, {errors} errors", file=sys.stderr)
    if errors:
        raise SystemExit(f"{errors} requests failed; the memory reading would not be meaningful")
    return done


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    generator = choose_generator(args.load_generator)
    work = Path(tempfile.mkdtemp(prefix="amms-memory-"))
    try:
        models = train_models(["iris_lr", "rf"], work / "artifacts")
        config = batched_config(build_repository(models, work / "repository"), 32, 50.0)
        port = free_port()
        spec = amms_spec("amms-batched", config, port)
        with running(spec, port, work / "server.log") as url:
            urls = [(url + path, body) for path, body in (request_for(spec, m) for m in models)]
            load(urls, generator, args.connections, args.slice, args.warmup_requests)
            before = server_rss_mb(port)
            print(f"  RSS after warm-up: {before:.1f} MB", file=sys.stderr)
            served = load(urls, generator, args.connections, args.slice, args.requests)
            after = server_rss_mb(port)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = after / before
    verdict = "met" if ratio <= GOAL else "MISSED"
    print(f"RSS after warm-up ({args.warmup_requests:,}+ requests): {before:.1f} MB")
    print(f"RSS after {served:,} more requests: {after:.1f} MB")
    print(f"{verdict}: after / warm-up = {ratio:.3f} (target <= {GOAL:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
