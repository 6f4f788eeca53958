"""Soak test (not run in CI): mixed load on a real `amms serve --watch` for N minutes, with a new
version published every few seconds. Reports failed requests (must be 0) and the server's RSS drift.

    python benchmarks/soak.py                  # 10 minutes, a swap every 10 s
    python benchmarks/soak.py --minutes 1 --swap-every 5
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from server_support import running_server

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
REQUESTS = [  # (path, body) pairs across protocols, models and batch sizes
    ("/models/iris/predict", {"inputs": [IRIS_ROW]}),
    ("/models/iris/predict", {"inputs": [IRIS_ROW] * 32, "probabilities": True}),
    ("/models/text/predict", {"inputs": ["a wonderful film", "boring"]}),
    ("/v1/models/iris:predict", {"instances": [IRIS_ROW]}),
    ("/v2/models/iris/infer", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]}),
    ("/v2/models/text/infer", {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["loved it"]}]}),
    ("/models/iris/predict", {"inputs": [[1, 2, 3]]}),  # a bad request: must stay a 400, never a 5xx
]


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def client_loop(url: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            path, body = rng.choice(REQUESTS)
            try:
                tally.statuses[client.post(path, json=body).status_code] += 1
            except httpx.HTTPError as exc:
                tally.errors.append(repr(exc))


def amms(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "amms_cli", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_project(folder: Path) -> Path:
    features, labels = load_iris(return_X_y=True)
    (folder / "iris.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(features, labels)))
    texts = ["wonderful film", "loved it", "boring", "awful plot"]
    text_model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 1, 0, 0])
    (folder / "text.pkl").write_bytes(pickle.dumps(text_model))
    amms("init", ".", cwd=folder)
    amms("add-model", "iris.pkl", "--name", "iris", "--example", json.dumps([IRIS_ROW]), cwd=folder)
    amms("add-model", "text.pkl", "--name", "text", "--example", '["a film"]', cwd=folder)
    return folder / "amms.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--swap-every", type=float, default=10.0, help="seconds between published versions")
    parser.add_argument("--clients", type=int, default=6)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amms-soak-") as tmp:
        config = make_project(Path(tmp))
        with running_server(config, "--watch") as server:
            process = psutil.Process(server.process.pid)
            stop, tallies = threading.Event(), [Tally() for _ in range(options.clients)]
            threads = [
                threading.Thread(target=client_loop, args=(server.url, stop, t, i)) for i, t in enumerate(tallies)
            ]
            for thread in threads:
                thread.start()
            time.sleep(min(10.0, options.minutes * 6))
            rss_start = process.memory_info().rss
            rss_peak, swaps, deadline = rss_start, 0, time.monotonic() + options.minutes * 60
            while time.monotonic() < deadline:
                time.sleep(options.swap_every)
                amms("bump-version", random.choice(["iris", "text"]), cwd=Path(tmp))
                swaps += 1
                rss_peak = max(rss_peak, process.memory_info().rss)
            rss_end = process.memory_info().rss
            stop.set()
            for thread in threads:
                thread.join()
    statuses = sum((t.statuses for t in tallies), Counter())
    errors = [e for t in tallies for e in t.errors]
    failed = sum(n for code, n in statuses.items() if code >= 500) + len(errors)
    unexpected_4xx = sum(n for code, n in statuses.items() if 400 <= code < 500 and code != 400)
    print(
        json.dumps(
            {
                "minutes": options.minutes,
                "swaps": swaps,
                "requests": sum(statuses.values()) + len(errors),
                "statuses": dict(sorted(statuses.items())),
                "connection_errors": len(errors),
                "failed": failed,
                "unexpected_4xx": unexpected_4xx,
                "rss_start_mb": round(rss_start / 2**20, 1),
                "rss_end_mb": round(rss_end / 2**20, 1),
                "rss_peak_mb": round(rss_peak / 2**20, 1),
                "rss_drift_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
            },
            indent=2,
        )
    )
    return 1 if failed or unexpected_4xx else 0


if __name__ == "__main__":
    raise SystemExit(main())
