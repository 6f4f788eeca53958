"""What a memory budget counts for the server's own memory beyond its versions (serving/model_cache.py):
a share of the budget until measured, then the most measured over the last two minutes, and 2% of
the budget kept free besides. In process, on a clock the test moves (two minutes of a real server are
too long for a test; the server tests in test_model_cache.py show the share and the measured overhead
at work)."""

from __future__ import annotations

import pytest

from amms_cli.loaders import footprint
from amms_cli.serving import model_cache
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.model_cache import OVERHEAD_WINDOW_S, Limits, ModelCache, ModelLocks
from amms_cli.serving.registry import Registry
from amms_cli.serving.unloading import Unloader

MIB = 2**20


def test_the_overhead_counted_is_the_share_then_the_most_measured_over_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(model_cache.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(footprint, "resident_bytes", lambda: 300 * MIB)  # the server when it starts serving
    cache = ModelCache(Limits(budget_bytes=100 * MIB), Registry(), Unloader(Lanes(1), 1.0), Metrics(), ModelLocks())

    def counted() -> float:
        overhead = cache.metrics.registry.get_sample_value("amms_model_cache_overhead_bytes") or 0.0
        assert cache.usage().held_bytes == overhead + 2 * MIB  # nothing loaded; 2% of the budget kept free
        return float(overhead / MIB)

    def measured_at(when: float, resident_mib: int) -> float:
        now[0] = when
        cache._measure_overhead(resident_mib * MIB)
        return counted()

    cache.serving_started()
    assert counted() == 15  # the share of the budget set aside until measured
    assert measured_at(1010, 310) == 15  # less measured: the share still counts, for a first window
    assert measured_at(1100, 325) == 25  # more measured: that counts
    assert measured_at(1000 + OVERHEAD_WINDOW_S + 5, 305) == 25  # the share has left the window, not 25
    assert measured_at(1100 + OVERHEAD_WINDOW_S + 5, 305) == 5  # now everything before has left it
    assert measured_at(1300 + OVERHEAD_WINDOW_S, 290) == 0  # less than at the start counts as nothing
