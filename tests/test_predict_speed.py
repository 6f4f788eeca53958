"""When a version's predictions run on the event loop (inline) and when in the thread pool."""

from __future__ import annotations

from amms_cli.registry import PredictSpeed

FAST_S = 0.0001
SLOW_S = 0.005


def warm(speed: PredictSpeed, calls: int, wall_s: float = FAST_S, cpu_s: float = FAST_S) -> None:
    for _ in range(calls):
        speed.observe(wall_s, cpu_s)


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
        speed.observe(SLOW_S, 0.0)  # inline, waited (I/O, a lock): the loop was blocked
        assert not speed.inline
        needed = PredictSpeed.WARM_UP_CALLS << demotions
        warm(speed, needed - 1, wall_s=SLOW_S, cpu_s=0.0)
        assert not speed.inline
        warm(speed, 1, wall_s=SLOW_S, cpu_s=0.0)
        assert speed.inline


def test_an_inline_model_that_grows_slower_returns_to_the_pool() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    warm(speed, PredictSpeed.WARM_UP_CALLS, wall_s=0.0015, cpu_s=0.0015)
    assert not speed.inline


def test_a_long_inline_streak_earns_back_a_doubling() -> None:
    speed = PredictSpeed()
    warm(speed, PredictSpeed.WARM_UP_CALLS)
    speed.observe(SLOW_S, 0.0)
    warm(speed, PredictSpeed.WARM_UP_CALLS << 1)
    assert speed.inline and speed.backoff == 1
    warm(speed, PredictSpeed.FORGIVE_AFTER_CALLS)
    assert speed.backoff == 0
