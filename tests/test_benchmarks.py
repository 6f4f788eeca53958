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


def test_ratios_pair_the_rounds_and_agree_with_the_table() -> None:
    """A slow round slows both servers measured in it: the ratio is the geometric mean of per-round
    ratios (req/s from this project's full run, where the median rounds alone would have given
    169 / 194 = 0.87), and the table's req/s columns divide to exactly its ratio column."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from loadgen import LoadResult
        from run import Row, format_table, rps_ratio, targets
    finally:
        sys.path.remove(str(BENCHMARKS))

    def row(server: str, rounds: tuple[float, ...]) -> Row:
        median = sorted(rounds)[1]
        return Row(server, "rf", 1, LoadResult(int(median * 10), 10.0, 5.0, 9.0, 0), rounds)

    rows = [row("floor", (211.0, 175.0, 194.0)), row("amms-batched", (207.0, 169.0, 158.0))]
    paired = (207 / 211 * 169 / 175 * 158 / 194) ** (1 / 3)
    assert rps_ratio(rows, "amms-batched", "floor", "rf", 1) == pytest.approx(paired)
    lines = [t.line() for t in targets(rows)]
    assert "  met    rf 1 conn, batching on: amms-batched / floor: 0.92 (target >= 0.9); rounds 0.98 0.97 0.81" in lines
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in format_table(rows).splitlines()[2:]]
    shown = {cells[0]: cells for cells in table}
    amms_rps, floor_rps = (float(shown[name][3].replace(",", "")) for name in ("amms-batched", "floor"))
    assert amms_rps / floor_rps == pytest.approx(float(shown["amms-batched"][7]), abs=0.01)


@pytest.mark.slow
def test_many_models_benchmark_prints_both_loads_and_every_goal() -> None:
    command = [sys.executable, str(BENCHMARKS / "many_models.py"), "--models", "12", "--resident", "4"]
    command += ["--seconds", "2", "--rounds", "2", "--warmup", "1", "--rate", "50"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    tables = [line for line in result.stdout.splitlines() if line.startswith("| setup")]
    assert len(tables) == 2  # the closed loop's and the open loop's
    rows = [line.split("|")[1].strip() for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows.count("count") == rows.count("budget") == rows.count("eager") == 2
    for goal in ("closed count: warm p99 / eager warm p99", "open budget: warm p99 / eager warm p99"):
        assert goal in result.stdout
    paired = [line for line in result.stdout.splitlines() if "warm p99 / eager warm p99" in line]
    assert len(paired) == 4 and all("95% interval" in line for line in paired)  # how settled each verdict is
    assert "budget: RSS" in result.stdout and "count: ready" in result.stdout
