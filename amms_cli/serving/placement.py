"""Where a version's predictions run: inline on the event loop when they are measured fast, else on a
thread (`PredictSpeed`), judged by the CPU time of the predicting thread (`thread_clock`)."""

from __future__ import annotations

import itertools
import resource
import time

_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)  # Linux only
_FALLBACK_WAITS = itertools.count()


def thread_clock() -> tuple[float, int]:
    """CPU seconds used by the calling thread (precise, from the scheduler), and how often it has
    blocked (voluntary context switches; getrusage's CPU times are tick-sampled, too coarse for
    sub-millisecond calls). Where the OS cannot count switches (macOS), every call counts as blocked."""
    if _RUSAGE_THREAD is None:
        return time.thread_time(), next(_FALLBACK_WAITS)
    return time.thread_time(), resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


class PredictSpeed:
    """Decides whether a version's predictions may run on the event loop.

    Handing a call to a thread costs tens of microseconds, more than a small linear model needs to
    predict. A version whose calls stay far below a millisecond runs inline (the event loop is held
    no longer than a thread hop would take).

    Calls are judged by the CPU time of the calling thread, not wall time: in the pool, wall time
    includes waiting for the GIL while the event loop runs (under load it made a 0.1 ms model look
    like a 3 ms one and kept it in the pool for good); inline, it includes being preempted by other
    processes on a busy machine. An inline call that used the CPU too long, or that blocked (the
    thread gave up the CPU by itself: I/O, a lock, a sleep) for too long, sends the version back to
    the pool. Every such demotion doubles the calls needed before it goes inline again, so a model
    that keeps waiting blocks the loop ever more rarely; a long inline streak earns one doubling back.
    """

    INLINE_BELOW_S = 0.0003
    SLOW_CALL_S = 0.002
    WARM_UP_CALLS = 32
    MAX_BACKOFF = 10  # at most 32 << 10 calls in the pool between two inline attempts
    FORGIVE_AFTER_CALLS = 10_000

    __slots__ = ("average_s", "backoff", "calls", "inline")

    def __init__(self) -> None:
        self.average_s = 0.0
        self.calls = 0
        self.backoff = 0
        self.inline = False

    def observe(self, wall_s: float, cpu_s: float, blocked: bool) -> None:
        """One finished call: wall time, CPU time of its thread, and whether the thread blocked."""
        self.calls += 1
        self.average_s = cpu_s if self.calls == 1 else 0.9 * self.average_s + 0.1 * cpu_s
        if self.inline:
            if cpu_s > self.SLOW_CALL_S or (blocked and wall_s > self.SLOW_CALL_S):
                self._demote()
            elif self.calls >= self.WARM_UP_CALLS and self.average_s > 2 * self.INLINE_BELOW_S:
                self.inline = False  # grew slower, though never slow enough to demote
                self.calls = 0
            elif self.calls >= self.FORGIVE_AFTER_CALLS:
                self.backoff = max(0, self.backoff - 1)
                self.calls = 0
        elif cpu_s > self.SLOW_CALL_S:
            self.calls = 0
        elif self.calls >= self.WARM_UP_CALLS << self.backoff:
            self.inline = self.average_s < self.INLINE_BELOW_S
            self.calls = 0

    def _demote(self) -> None:
        self.inline = False
        self.calls = 0
        self.backoff = min(self.backoff + 1, self.MAX_BACKOFF)
