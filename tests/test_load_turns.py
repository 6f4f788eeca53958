"""Loads that measure their memory run alone (serving/loading.py `LoadTurns`): the loads under way
finish first, the ones that start meanwhile wait, loads that reuse a figure overlap, and a load that
never finishes is waited for only so long."""

from __future__ import annotations

import threading
import time

from amms_cli.serving.loading import LoadTurns


def enter(turns: LoadTurns, label: str, alone: bool, log: list[str], leave: threading.Event) -> threading.Thread:
    def run() -> None:
        with turns.turn(alone=alone):
            log.append(f"{label} in")
            leave.wait(10)
            log.append(f"{label} out")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def settle() -> None:
    time.sleep(0.2)  # long enough for a thread that may enter to have entered


def test_a_measuring_load_waits_for_the_loads_under_way_and_later_ones_wait_for_it() -> None:
    turns, log = LoadTurns(wait_s=10), []
    first, measuring, later = threading.Event(), threading.Event(), threading.Event()
    threads = [enter(turns, "first", False, log, first)]
    settle()
    threads.append(enter(turns, "measuring", True, log, measuring))
    settle()
    threads.append(enter(turns, "later", False, log, later))
    settle()
    assert log == ["first in"]
    first.set()
    settle()
    assert log == ["first in", "first out", "measuring in"]
    measuring.set()
    later.set()
    for thread in threads:
        thread.join(5)
    assert log == ["first in", "first out", "measuring in", "measuring out", "later in", "later out"]


def test_loads_that_reuse_a_figure_overlap() -> None:
    turns, log, leave = LoadTurns(wait_s=10), [], threading.Event()
    threads = [enter(turns, name, False, log, leave) for name in ("a", "b")]
    settle()
    assert sorted(log) == ["a in", "b in"]
    leave.set()
    for thread in threads:
        thread.join(5)


def test_a_load_that_never_finishes_is_waited_for_only_so_long() -> None:
    turns, log = LoadTurns(wait_s=0.3), []
    hung, rest = threading.Event(), threading.Event()
    threads = [enter(turns, "hung", True, log, hung)]
    settle()
    started = time.monotonic()
    threads.append(enter(turns, "next", False, log, rest))
    while "next in" not in log and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert 0.25 <= time.monotonic() - started < 2, log
    threads.append(enter(turns, "after", False, log, rest))  # the hung load is not waited for again
    settle()
    assert "after in" in log
    rest.set()
    hung.set()
    for thread in threads:
        thread.join(5)
