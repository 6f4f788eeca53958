"""Short garbage-collector pauses while serving.

A loaded model and the libraries behind it (scikit-learn, numpy, pydantic, FastAPI) are millions
of long-lived objects. Python's full (generation 2) collection walks every one of them: on a server
holding a 100-tree random forest each took 70-90 ms, about twice a second under load, and every
request in flight waited for it (most of that server's p99 latency). Nothing loaded is garbage
until it is unloaded, so after each load or unload `settle` collects once and then freezes
everything alive into the permanent generation, which later collections skip. Request garbage is
still collected as usual, from the young generations.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what a load or unload left behind, then keep what is alive out of future collections."""
    gc.unfreeze()  # an unloaded model's objects are frozen too; they must be seen to be freed
    gc.collect()
    gc.freeze()
