"""Resident memory of this process (Linux: /proc/self/statm), to measure what loading a version
costs: the growth across its load is the version's memory (an estimate: other threads allocate
meanwhile, and freed memory is not always returned to the system). Where it cannot be read, the
version's artifact size stands in."""

from __future__ import annotations

import ctypes
import ctypes.util
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


def _libc() -> ctypes.CDLL | None:
    """glibc, whose allocator keeps freed memory unless asked; None elsewhere (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def map_large_blocks(threshold_bytes: int = 256 * 1024) -> None:
    """Give every allocation of `threshold_bytes` or more its own mapping, returned to the system
    when freed. glibc's default raises that threshold each time such a block is freed (up to 32 MiB),
    after which a model's arrays come from the heap and stay in it once the model is evicted."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold_bytes)


def return_freed() -> None:
    """Hand memory freed by unloaded versions back to the system (glibc keeps it in its arenas)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
