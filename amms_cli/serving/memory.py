"""Resident memory of this process (Linux: /proc/self/statm), to measure what loading a version
costs: the growth across its load is the version's memory (an estimate: other threads allocate
meanwhile, and freed memory is not always returned to the system). Where it cannot be read, the
version's artifact size stands in."""

from __future__ import annotations

import os

STATM = "/proc/self/statm"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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
