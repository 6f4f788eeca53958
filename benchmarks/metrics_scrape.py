"""A Prometheus scrape of a server with many models, and what the requests sent meanwhile wait.

With N models (default 1,000 pickled iris models, all loaded, as `many_models.py` builds them) the
/metrics text holds a few series per model (loads, resident bytes, request counts and latency
histograms): about 3 MB, 0.35-0.5 s of Python to render. Rendered on the event loop, every request
waited for the whole render; amms renders it in a thread. This prints how long a scrape takes, the
slowest prediction sent during each scrape against the median prediction without one (same run), and
how much the server's resident size grew since just before the first scrape: ~8-9 MiB at 1,000 models,
after the first scrape and no further, kept by Python's small-object arenas (returning the allocator's
free memory does not give it back; rendering family by family did not shrink it either); a memory
budget counts it with the server's own memory (serving/model_cache.py).

    python benchmarks/metrics_scrape.py                # 1,000 models (~1.5 min)
    python benchmarks/metrics_scrape.py --models 200   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from many_models import IRIS_ROW, build_repository, drive, parse_args, start_setup


async def predict_seconds(client: httpx.AsyncClient, url: str, body: bytes) -> float:
    started = time.perf_counter()
    answer = await client.post(url, content=body, headers={"content-type": "application/json"})
    answer.raise_for_status()
    return time.perf_counter() - started


Scrape = tuple[float, float, int, int]  # seconds, slowest prediction's seconds, bytes, server RSS after


async def measure(base: str, scrapes: int, server: psutil.Process) -> tuple[float, int, list[Scrape]]:
    """The median prediction alone and the server's RSS then, then per scrape: its duration, the
    slowest prediction sent one after the other while it ran, its size, and the server's RSS after."""
    url = f"{base}/models/m0000/predict"
    body = json.dumps({"inputs": [IRIS_ROW]}).encode()
    async with httpx.AsyncClient(timeout=60) as client:
        alone = statistics.median([await predict_seconds(client, url, body) for _ in range(200)])
        rss_before = server.memory_info().rss
        results = []
        for _ in range(scrapes):
            started = time.perf_counter()
            scrape = asyncio.create_task(client.get(f"{base}/metrics"))
            await asyncio.sleep(0.01)  # the scrape has started
            slowest = 0.0
            while not scrape.done():
                slowest = max(slowest, await predict_seconds(client, url, body))
            text = (await scrape).content
            results.append((time.perf_counter() - started, slowest, len(text), server.memory_info().rss))
    return alone, rss_before, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000, help="models, all loaded (default 1,000)")
    parser.add_argument("--scrapes", type=int, default=5, help="scrapes measured (default 5)")
    ours = parser.parse_args(argv)
    args = parse_args(["--models", str(ours.models)])  # the many-models defaults otherwise
    work = Path(tempfile.mkdtemp(prefix="amms-scrape-"))
    try:
        print(f"building {args.models} models ...", file=sys.stderr)
        config = build_repository(work / "repository", args.models, args.padding_mib)
        with contextlib.ExitStack() as stack:
            server = start_setup(stack, "eager", config, args, [], None)
            asyncio.run(drive(server.url, "open", args, 5.0))  # request series for the models it reaches
            alone, rss_before, results = asyncio.run(measure(server.url, ours.scrapes, server.process))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.models} models; a prediction alone: median {alone * 1e3:.1f} ms")
    print("| scrape | ms | MB | slowest prediction during it, ms | / median alone | server RSS grown since, MiB |")
    print("|---|---|---|---|---|---|")
    for number, (seconds, slowest, size, rss) in enumerate(results, 1):
        grown = (rss - rss_before) / 2**20
        print(
            f"| {number} | {seconds * 1e3:.0f} | {size / 1e6:.1f} | {slowest * 1e3:.1f} | {slowest / alone:.0f}x "
            f"| {grown:+.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
