"""When a version's predictions run on the event loop (inline) and when in the thread pool."""

from __future__ import annotations

import time

from amms_cli.serving.placement import PredictSpeed, thread_clock

FAST_S = 0.0001
SLOW_S = 0.005


def warm(speed: PredictSpeed, calls: int, wall_s: float = FAST_S, cpu_s: float = FAST_S, blocked: bool = False) -> None:
    for _ in range(calls):
        speed.observe(wall_s, cpu_s, blocked)


def test_a_fast_model_goes_inline_after_the_warm_up() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS - 1)
    assert not speed.inline
    warm(speed, 1)
    assert speed.inline


def test_pool_calls_slowed_by_waiting_for_the_gil_still_count_as_fast() -> None:
    """Wall time in the pool includes GIL waits while the loop runs; the thread's CPU time does not."""
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS, wall_s=SLOW_S, cpu_s=FAST_S)
    assert speed.inline


def test_a_model_that_uses_the_cpu_for_milliseconds_stays_in_the_pool() -> None:
    speed = PredictSpeed()
    warm(speed, 10 * PredictSpeed.WARM_UP_CALLS, wall_s=SLOW_S, cpu_s=SLOW_S)
    assert not speed.inline
    warm(speed, 10 * PredictSpeed.WARM_UP_CALLS, wall_s=0.0008, cpu_s=0.0008)  # under SLOW_CALL_S, over the bar
    assert not speed.inline


def test_one_slow_inline_call_demotes_and_each_demotion_doubles_the_next_warm_up() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    for demotions in range(1, 4):
        speed.observe(SLOW_S, 0.0, blocked=True)  # inline, waited (I/O, a lock): the loop was blocked
        assert not speed.inline
        needed = PredictSpeed.WARM_UP_CALLS << demotions
        warm(speed, needed - 1, wall_s=SLOW_S, cpu_s=0.0, blocked=True)
        assert not speed.inline
        warm(speed, 1, wall_s=SLOW_S, cpu_s=0.0, blocked=True)
        assert speed.inline


def test_an_inline_model_that_grows_slower_returns_to_the_pool() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    warm(speed, PredictSpeed.WARM_UP_CALLS, wall_s=0.0015, cpu_s=0.0015)
    assert not speed.inline


def test_a_long_inline_streak_earns_back_a_doubling() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    speed.observe(SLOW_S, 0.0, blocked=True)
    warm(speed, PredictSpeed.WARM_UP_CALLS << 1)
    assert speed.inline and speed.backoff == 1
    warm(speed, PredictSpeed.FORGIVE_AFTER_CALLS)
    assert speed.backoff == 0


def test_an_inline_call_preempted_by_a_busy_machine_does_not_demote() -> None:
    """Slow by the wall clock, yet it neither used the CPU long nor blocked: another process ran."""
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    speed.observe(SLOW_S, FAST_S, blocked=False)
    assert speed.inline and speed.backoff == 0


def test_an_inline_call_that_computes_for_milliseconds_demotes() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    speed.observe(SLOW_S, SLOW_S, blocked=False)
    assert not speed.inline


def test_the_thread_clock_sees_cpu_use_and_blocking() -> None:
    cpu, _ = thread_clock()
    deadline = time.thread_time() + 0.02
    while time.thread_time() < deadline:
        pass
    busy_cpu, busy_waits = thread_clock()
    assert busy_cpu - cpu >= 0.015
    time.sleep(0.01)
    _, slept_waits = thread_clock()
    assert slept_waits != busy_waits
