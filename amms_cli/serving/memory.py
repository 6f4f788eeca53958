"""What happens to the memory of unloaded versions (glibc's allocator; elsewhere, whatever the system
does). What a load adds is measured by loaders/footprint.py.

With the model cache on, versions are loaded and evicted all the time, mostly one for another of a
similar size. glibc's default gives each block of 128 KiB or more (the threshold then grows with the
blocks freed) a mapping of its own, returned to the system when freed: the next load then maps fresh
memory and fills it page by page, with the interpreter's lock held (measured: `pickle.loads` of one of
the many-models benchmark's 2 MiB models took 0.06 ms in reused memory, 1.0 ms in fresh mappings).
So blocks up to `HEAP_BLOCKS_UP_TO` come from the heap, where an evicted model's memory is reused by
the next load; the cache hands back what is still free a few seconds after its unloads
(model_cache.py), as glibc would not by itself."""

from __future__ import annotations

from amms_cli.loaders import footprint

HEAP_BLOCKS_UP_TO = 32 * 2**20  # glibc's own ceiling for the threshold it adjusts by itself
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
_M_ARENA_MAX = -8


def reuse_freed_blocks() -> None:
    """Serve blocks up to HEAP_BLOCKS_UP_TO from the heap (glibc still gives back at once a heap's
    top when more than 128 KiB of it is free; the rest waits for `return_freed`), and one heap for
    every thread: each load runs in a thread of its own, and memory freed in another thread's heap
    would not serve it (measured, many-models benchmark, Zipf 1.5 under a 202 MiB budget, 30 s: RSS
    378 MiB with glibc's default of a heap per thread up to 8 per core, 359 with one)."""
    if footprint.GLIBC is not None:
        footprint.GLIBC.mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO)
        footprint.GLIBC.mallopt(_M_ARENA_MAX, 1)


def return_freed() -> None:
    """Hand the free memory the allocator keeps in its heaps back to the system."""
    if footprint.GLIBC is not None:
        footprint.GLIBC.malloc_trim(0)
