"""Short garbage-collector pauses while serving.

A loaded model and the libraries behind it (scikit-learn, numpy, pydantic, FastAPI) are millions
of long-lived objects. Python's full (generation 2) collection walks every one of them: on a server
holding a 100-tree random forest each took 70-90 ms, about twice a second under load, and every
request in flight waited for it (most of that server's p99 latency). Nothing loaded is garbage
until it is unloaded, so after each load or unload `settle` collects once and then freezes
everything alive into the permanent generation, which later collections skip. Request garbage is
still collected as usual, from the young generations.

With the model cache on, versions load and go all the time, and a full collection each time held the
event loop for most of every cold start. `settle_soon` only freezes what was loaded in the last few
seconds, once for all of it. Evicted versions are freed by reference counting at once, frozen or not;
only objects in reference cycles wait for a full collection, and that costs the event loop 65-100 ms
with a hundred scikit-learn models loaded (every request meanwhile waits). So it runs only when it
has something to free: each unloaded model is watched (`watch_unloaded`: it and what it holds, by weak
reference). One still alive at a settle is either held from outside (a request's frame, a traceback,
a reference a user's code keeps) or garbage kept by a cycle; `reference_cycles` tells which by
counting references over what it reaches (~1 ms a model). Only garbage makes a full collection run, at
most once a minute: one cannot free what something still references, and taking every alive model for
a cycle (as this module once did) made a reference held a few seconds too long cost 110-130 ms a
minute. A model held from outside stays watched, for a minute at most, and is tested again at each
settle. A cycle deeper inside a model, which leaves those objects free, is caught by a full collection
every ten minutes when anything was unloaded meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from dataclasses import dataclass

from amms_cli.serving.reference_cycles import SHARED, kept_only_by_cycles

SETTLE_DELAY_S = 2.0
FULL_SETTLE_AT_MOST_EVERY_S = 60.0  # when an unloaded model was found kept alive by a cycle
FULL_SETTLE_EVERY_S = 600.0  # otherwise, when anything was unloaded meanwhile
WATCH_FOR_S = 60.0  # how long an unloaded model held from outside is looked at again
_pending: asyncio.TimerHandle | None = None
_last_full = time.monotonic()  # the clock starts with the server


@dataclass(frozen=True)
class Watched:
    ref: weakref.ref[object]
    since: float  # when it was unloaded (time.monotonic)


_unloaded: list[Watched] = []  # what unloaded models held, until it is freed or WATCH_FOR_S has passed
_cycle_seen = False  # an unloaded model is garbage kept by a cycle: only a full collection frees it
_unloaded_since_full = False


def settle() -> None:
    """Collect what a load or unload left behind, then keep what is alive out of future collections."""
    global _last_full, _cycle_seen, _unloaded_since_full
    gc.unfreeze()  # an unloaded model's objects are frozen too; they must be seen to be freed
    gc.collect()
    gc.freeze()
    _last_full = time.monotonic()
    _cycle_seen = _unloaded_since_full = False
    _unloaded.clear()


def watch_unloaded(model: object) -> None:
    """A model about to be closed: it and each object it holds directly should be freed by reference
    counting once its version is dropped; one still alive at a settle is held from outside or by a
    cycle. Modules, classes and functions it holds (`self._torch = torch`) outlive it anyway: not
    watched."""
    global _unloaded_since_full
    _unloaded_since_full = True
    since = time.monotonic()
    held = vars(model).values() if hasattr(model, "__dict__") else ()
    for thing in (model, *held):
        if isinstance(thing, SHARED):
            continue
        try:
            _unloaded.append(Watched(weakref.ref(thing), since))
        except TypeError:  # None, numbers, strings, tuples: no weak references, nothing to learn
            continue


def settle_soon() -> None:
    """Freeze what loaded in a few seconds, once for every call until then."""
    global _pending
    if _pending is not None:
        return
    _pending = asyncio.get_running_loop().call_later(SETTLE_DELAY_S, _freeze)


def full_collection_due(now: float) -> bool:
    """Whether the settle at `now` should collect fully (see the module's docstring)."""
    global _cycle_seen
    alive = [watched for watched in _unloaded if watched.ref() is not None]
    _unloaded.clear()
    for watched in alive:
        if _cycle_seen:
            break
        _cycle_seen = kept_only_by_cycles(watched.ref) is not False  # None: too large to tell, collect
        if not _cycle_seen and now - watched.since < WATCH_FOR_S:
            _unloaded.append(watched)  # held from outside for now: looked at again next time
    since = now - _last_full
    return (_cycle_seen and since >= FULL_SETTLE_AT_MOST_EVERY_S) or (
        _unloaded_since_full and since >= FULL_SETTLE_EVERY_S
    )


def _freeze() -> None:
    global _pending
    _pending = None
    if full_collection_due(time.monotonic()):
        settle()
    else:
        gc.freeze()  # cheap: what is alive joins the permanent generation, nothing is walked
