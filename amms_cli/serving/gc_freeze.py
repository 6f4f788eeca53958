"""Short garbage-collector pauses while serving.

A loaded model and the libraries behind it (scikit-learn, numpy, pydantic, FastAPI) are millions
of long-lived objects. Python's full (generation 2) collection walks every one of them: on a server
holding a 100-tree random forest each took 70-90 ms, about twice a second under load, and every
request in flight waited for it (most of that server's p99 latency). Nothing loaded is garbage
until it is unloaded, so after each load or unload `settle` collects once and then freezes
everything alive into the permanent generation, which later collections skip. Request garbage is
still collected as usual, from the young generations.

With the model cache on, versions load and go all the time: `settle_soon` collects once for all the
loads and evictions of the next few seconds (a full collection per eviction held the event loop
for most of each cold start), and hands the freed memory back to the system (memory.py).
"""

from __future__ import annotations

import asyncio
import gc

from amms_cli.serving import memory

SETTLE_DELAY_S = 2.0
_pending: asyncio.TimerHandle | None = None


def settle() -> None:
    """Collect what a load or unload left behind, then keep what is alive out of future collections."""
    gc.unfreeze()  # an unloaded model's objects are frozen too; they must be seen to be freed
    gc.collect()
    gc.freeze()


def settle_soon() -> None:
    """Settle (and return freed memory to the system) in a few seconds, once for every call until then."""
    global _pending
    if _pending is not None and not _pending.cancelled():
        return
    _pending = asyncio.get_running_loop().call_later(SETTLE_DELAY_S, _settle_and_trim)


def _settle_and_trim() -> None:
    global _pending
    _pending = None
    settle()
    memory.return_freed()
