"""Memory of this process, to measure what loading a model costs: the growth across its load is the
model's memory (an estimate: other threads allocate meanwhile, so a load that measures runs apart
from other loads, serving/loading.py). Two figures are read, and the larger
growth counts: the resident size (Linux: /proc/self/statm), and what glibc's allocator has handed out
(mallinfo2), which still grows when a load reuses memory an evicted model freed, where the resident
size does not. Where neither can be read, the model's artifact size stands in. The server measures
every load with it (serving/loading.py); `amms add-model` measures the trial load, to refuse a model
bigger than the memory budget before publishing it. The resident peak (Linux: VmHWM, restartable) is
what a memory budget measures the server's own memory from (serving/model_cache.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass

STATM = "/proc/self/statm"
STATUS = "/proc/self/status"
CLEAR_REFS = "/proc/self/clear_refs"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# glibc: allocations this big or bigger get a mapping of their own, returned to the system when freed
# (the trial load's child when it measures), so that what a load measures is what the model holds
LARGE_BLOCK_BYTES = 256 * 1024


class MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (every arena's figures, in bytes)."""

    _FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    _fields_ = [(name, ctypes.c_size_t) for name in (*_FIELDS, "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    """glibc 2.33 or later (mallinfo2, malloc_trim, mallopt); None elsewhere (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not all(hasattr(libc, f) for f in ("mallinfo2", "malloc_trim", "mallopt")):
        return None
    libc.mallinfo2.restype = MallInfo2
    return libc


GLIBC = _glibc()


@dataclass(frozen=True)
class Reading:
    resident: int | None  # bytes of this process in RAM
    allocated: int | None  # bytes the allocator has handed out and not had back


def read() -> Reading:
    return Reading(resident_bytes(), allocated_bytes())


def resident_bytes() -> int | None:
    """Bytes of this process in RAM now, or None where the system does not say. The file stays open
    (reading it again from the start gives fresh figures): 1 µs a reading instead of 12."""
    try:
        return int(os.pread(_statm_descriptor(), 128, 0).split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def resident_peak_bytes() -> int | None:
    """The most this process has held in RAM since it started or since `restart_resident_peak`
    (Linux: VmHWM), or None where the system does not say."""
    try:
        with open(STATUS, "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def restart_resident_peak() -> None:
    """Make the peak `resident_peak_bytes` reports start again from what the process holds now
    (Linux 4.0 and later; elsewhere, or where it is refused, the peak keeps counting from before)."""
    try:
        with open(CLEAR_REFS, "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return


_statm: tuple[int, int] | None = None  # (process id, descriptor): a forked child opens its own
_statm_opening = threading.Lock()


def _statm_descriptor() -> int:
    global _statm
    with _statm_opening:
        if _statm is None or _statm[0] != os.getpid():
            _statm = (os.getpid(), os.open(STATM, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        return _statm[1]


def allocated_bytes() -> int | None:
    """Bytes glibc's allocator has handed out (from its heaps and as mappings of their own), or None."""
    if GLIBC is None:
        return None
    info = GLIBC.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def growth(before: Reading | None, after: Reading, fallback: int) -> int:
    """Memory a load added: the larger growth of the two figures read both times, else `fallback`."""
    if before is None:
        return fallback
    pairs = ((before.resident, after.resident), (before.allocated, after.allocated))
    grown = [max(now - then, 0) for then, now in pairs if then is not None and now is not None]
    return max(grown) if grown else fallback


def resident_growth(before: Reading | None, after: Reading | None) -> int:
    """How much the resident size grew between two readings (0 where it cannot be read)."""
    if before is None or after is None or before.resident is None or after.resident is None:
        return 0
    return max(after.resident - before.resident, 0)


def format_bytes(size: float) -> str:
    """1536 -> '1.5 KiB': the binary units --memory-budget takes."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
