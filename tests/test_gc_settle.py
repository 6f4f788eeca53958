"""When the model cache's settle collects fully (serving/gc_freeze.py): a full collection holds the event
loop for 65-100 ms, so it runs only when an unloaded model is still alive at the next settle (a
reference cycle keeps it, which only a full collection frees), at most once a minute, and every ten
minutes when anything was unloaded meanwhile. These tests drive the module's own clock-taking
functions with explicit times; the server-level behaviour (memory returned after evictions) is in
test_model_cache.py."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from amms_cli.loaders.base import ObjectModel
from amms_cli.serving import gc_freeze


class Estimator:
    def __init__(self, mib: int) -> None:
        self.weights = bytearray(mib * 2**20)
        self.me: Estimator | None = None

    def predict(self, rows: object) -> object:
        return rows


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    gc_freeze.settle()  # a full collection just happened: the minute starts now
    yield
    gc.unfreeze()


def test_a_model_freed_by_reference_counting_needs_no_full_collection() -> None:
    model = ObjectModel(Estimator(1), "sklearn")
    gc_freeze.watch_unloaded(model)
    model.close()
    del model
    now = gc_freeze._last_full
    assert not gc_freeze.full_collection_due(now + 120)  # nothing kept: no pause, however long since
    assert gc_freeze.full_collection_due(now + gc_freeze.FULL_SETTLE_EVERY_S)  # the slow safety net


def test_a_model_kept_by_a_cycle_is_collected_at_the_next_settle_a_minute_on() -> None:
    estimator = Estimator(8)
    estimator.me = estimator  # a reference cycle: reference counting never frees it
    gone = weakref.ref(estimator)
    model = ObjectModel(estimator, "sklearn")
    gc_freeze.watch_unloaded(model)
    gc.freeze()  # as a settle after its load did: frozen objects are skipped by collections
    model.close()
    del model, estimator
    now = gc_freeze._last_full
    assert not gc_freeze.full_collection_due(now + 5)  # seen, but a full collection ran a minute ago
    assert gone() is not None
    assert gc_freeze.full_collection_due(now + gc_freeze.FULL_SETTLE_AT_MOST_EVERY_S)  # remembered
    gc_freeze.settle()
    assert gone() is None
    assert not gc_freeze.full_collection_due(now + 2 * gc_freeze.FULL_SETTLE_AT_MOST_EVERY_S)


def test_modules_and_classes_a_model_holds_are_not_taken_for_cycles() -> None:
    model = ObjectModel(Estimator(1), "sklearn")
    model.library = gc  # type: ignore[attr-defined]  # as the Keras and Torch wrappers keep their module
    model.kind = Estimator  # type: ignore[attr-defined]
    gc_freeze.watch_unloaded(model)
    model.close()
    del model
    assert not gc_freeze.full_collection_due(gc_freeze._last_full + 120)
