"""Resident memory of this process (Linux: /proc/self/statm), to measure what loading a model costs:
the growth across its load is the model's memory (an estimate: other threads allocate meanwhile, and
freed memory is not always returned to the system). Where it cannot be read, the model's artifact
size stands in. The server measures every load with it (serving/loading.py); `amms add-model`
measures the trial load, to refuse a model bigger than the memory budget before publishing it."""

from __future__ import annotations

import os

STATM = "/proc/self/statm"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# glibc: allocations this big or bigger get a mapping of their own, returned to the system when freed
# (the server sets it with the model cache on, serving/memory.py; the trial load's child when it
# measures), so what a load measures is what the model holds, not the buffers it was read through
LARGE_BLOCK_BYTES = 256 * 1024


def resident_bytes() -> int | None:
    """Bytes of this process in RAM now, or None where the system does not say."""
    try:
        with open(STATM, encoding="ascii") as handle:
            return int(handle.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def growth(before: int | None, after: int | None, fallback: int) -> int:
    """Memory a load added: the resident growth when both readings exist, else `fallback`."""
    if before is None or after is None:
        return fallback
    return max(after - before, 0)


def format_bytes(size: float) -> str:
    """1536 -> '1.5 KiB': the binary units --memory-budget takes."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
