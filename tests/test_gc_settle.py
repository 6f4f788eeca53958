"""When the model cache's settle collects fully (serving/gc_freeze.py): a full collection holds the event
loop for 65-130 ms, so it runs only when an unloaded model is garbage kept by a reference cycle at a
settle (only a full collection frees it), at most once a minute, and every ten minutes when anything
was unloaded meanwhile. A model still held from outside (a frame, a list) is not garbage: a full
collection could not free it, so it only stays watched. These tests drive the module's own
clock-taking functions with explicit times, and `reference_cycles` with object graphs whose answer is
known; the server-level behaviour (memory returned after evictions) is in test_model_cache.py."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from amms_cli.loaders.base import ObjectModel
from amms_cli.serving import gc_freeze
from amms_cli.serving.reference_cycles import kept_only_by_cycles


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


def test_a_model_held_from_outside_costs_no_full_collection_until_it_is_let_go() -> None:
    estimator = Estimator(8)
    estimator.me = estimator  # a cycle, but a request's frame (here: a list) still holds the estimator
    gone = weakref.ref(estimator)
    frame = [estimator]
    model = ObjectModel(estimator, "sklearn")
    gc_freeze.watch_unloaded(model)
    gc.freeze()
    model.close()
    del model, estimator
    now = gc_freeze._last_full
    assert not gc_freeze.full_collection_due(now + 30)  # held: collecting could not free it
    assert not gc_freeze.full_collection_due(now + 50)  # still watched, still held
    frame.clear()  # the request is done: now only its own cycle keeps it
    assert not gc_freeze.full_collection_due(now + 52)  # found, but the last full collection was 52 s ago
    assert gc_freeze.full_collection_due(now + gc_freeze.FULL_SETTLE_AT_MOST_EVERY_S)
    gc_freeze.settle()
    assert gone() is None


def test_a_model_held_from_outside_for_over_a_minute_is_left_to_the_ten_minute_collection() -> None:
    estimator = Estimator(1)
    estimator.me = estimator
    holder = [estimator]
    model = ObjectModel(estimator, "sklearn")
    gc_freeze.watch_unloaded(model)
    model.close()
    del model, estimator
    now = gc_freeze._last_full
    assert not gc_freeze.full_collection_due(now + 30)
    assert not gc_freeze.full_collection_due(now + gc_freeze.WATCH_FOR_S + 1)  # no longer watched after this
    holder.clear()
    assert not gc_freeze.full_collection_due(now + gc_freeze.WATCH_FOR_S + 3)
    assert gc_freeze.full_collection_due(now + gc_freeze.FULL_SETTLE_EVERY_S)


class Node:
    def __init__(self) -> None:
        self.links: list[object] = []


def cycle_through_a_dict() -> tuple[weakref.ref[Node], list[object]]:
    a, b = Node(), Node()
    a.links.append({"partner": b})
    b.links.append(a)
    return weakref.ref(a), []


def cycle_whose_other_member_is_held() -> tuple[weakref.ref[Node], list[object]]:
    a, b = Node(), Node()
    a.links.append(b)
    b.links.append(a)
    return weakref.ref(a), [b]


def cycle_held_by_a_global() -> tuple[weakref.ref[Node], list[object]]:
    a = Node()
    a.links.append(a)
    return weakref.ref(a), [{"global": a}]


def no_cycle() -> tuple[weakref.ref[Node], list[object]]:
    return weakref.ref(Node()), []  # freed by reference counting at once: nothing to collect


def cycle_through_a_bound_method_and_an_array_view() -> tuple[weakref.ref[Node], list[object]]:
    a = Node()
    weights = np.zeros(1_000)
    a.links.extend([weights, weights[10:], a.__init__])
    return weakref.ref(a), []


@pytest.mark.parametrize(
    ("build", "garbage"),
    [
        (cycle_through_a_dict, True),
        (cycle_whose_other_member_is_held, False),
        (cycle_held_by_a_global, False),
        (no_cycle, False),
        (cycle_through_a_bound_method_and_an_array_view, True),
    ],
)
def test_cycles_are_told_from_references_held_outside(
    build: Callable[[], tuple[weakref.ref[Node], list[object]]], garbage: bool
) -> None:
    ref, outside = build()
    assert kept_only_by_cycles(ref) is garbage
    outside.clear()
    gc.collect()  # unfrozen, young: a plain collection frees all of them
    assert ref() is None


@pytest.mark.parametrize("held", [False, True])
def test_a_fitted_scikit_learn_pipeline_in_a_cycle_is_told_apart(held: bool) -> None:
    """Fitted estimators hold numpy arrays and Cython trees, which report their references differently."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = np.random.default_rng(0).random((60, 4))
    pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))
    pipeline.fit(rows, rows[:, 0] > 0.5)
    pipeline.steps[0][1].owner = pipeline  # type: ignore[attr-defined]  # a step that points back
    ref = weakref.ref(pipeline)
    outside = [pipeline] if held else []
    del pipeline
    assert kept_only_by_cycles(ref) is (not held)
    outside.clear()
    gc.collect()
    assert ref() is None


def test_an_object_graph_too_large_to_walk_cannot_be_told() -> None:
    a = Node()
    a.links.extend([a, [[index] for index in range(2_000)]])
    assert kept_only_by_cycles(weakref.ref(a), limit=1_000) is None
