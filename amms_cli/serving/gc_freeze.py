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
seconds, once for all of it, and hands the memory freed by evicted versions back to the system
(memory.py, in a thread); a full `settle` runs at most once a minute. Evicted versions are freed by
reference counting at once; only their reference cycles wait for that full collection.
"""

from __future__ import annotations

import asyncio
import gc
import time

from amms_cli.serving import memory

SETTLE_DELAY_S = 2.0
FULL_SETTLE_EVERY_S = 60.0
_pending: asyncio.TimerHandle | None = None
_last_full = 0.0


def settle() -> None:
    """Collect what a load or unload left behind, then keep what is alive out of future collections."""
    gc.unfreeze()  # an unloaded model's objects are frozen too; they must be seen to be freed
    gc.collect()
    gc.freeze()


def settle_soon() -> None:
    """Freeze what loaded and return what was freed in a few seconds, once for every call until then."""
    global _pending
    if _pending is not None:
        return
    _pending = asyncio.get_running_loop().call_later(SETTLE_DELAY_S, _freeze_and_trim)


def _freeze_and_trim() -> None:
    global _pending, _last_full
    _pending = None
    if time.monotonic() - _last_full >= FULL_SETTLE_EVERY_S:
        _last_full = time.monotonic()
        settle()
    else:
        gc.freeze()  # cheap: what is alive joins the permanent generation, nothing is walked
    asyncio.get_running_loop().run_in_executor(None, memory.return_freed)
