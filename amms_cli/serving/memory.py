"""Returning the memory of unloaded versions to the system (glibc keeps freed memory in its arenas
unless asked). What a load adds is measured by loaders/footprint.py."""

from __future__ import annotations

import ctypes
import ctypes.util

from amms_cli.loaders import footprint


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


def map_large_blocks(threshold_bytes: int = footprint.LARGE_BLOCK_BYTES) -> None:
    """Give every allocation of `threshold_bytes` or more its own mapping, returned to the system
    when freed. glibc's default raises that threshold each time such a block is freed (up to 32 MiB),
    after which a model's arrays come from the heap and stay in it once the model is evicted."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold_bytes)


def return_freed() -> None:
    """Hand memory freed by unloaded versions back to the system (glibc keeps it in its arenas)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
