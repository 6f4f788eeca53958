"""CI smoke of the benchmark: it runs end to end and prints its table. Timings are never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_quick_benchmark_prints_a_table() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| server | model | conns | req/s")
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|"))[:3] for line in table[2:]}
    assert {("floor", "iris_lr", "1"), ("amms", "iris_lr", "1")} <= rows
    # every target is listed, the ones this run did not measure said so (never a made-up number)
    targets = result.stdout.split("targets:", 1)[1]
    assert "iris_lr 1 conn: amms / floor:" in targets
    assert "rf 64 conns: amms --workers 2 / 1: not measured in this run" in targets
