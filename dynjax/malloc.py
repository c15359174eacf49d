"""glibc malloc tuned for XLA:CPU's per-step buffers, applied to the process at import.

XLA:CPU allocates each step's temporaries (tens of MB) with malloc, on its worker threads. glibc
serves a worker thread from a secondary arena, whose heaps are at most 64 MB, so each such block
is mmap'd and munmap'd on free, and the next step faults every page of it in again: on the
embedded default 15.5M minor page faults and 25 s of system time in a 95 s run. One arena (the
main one, which grows without that limit), an mmap threshold of 256 MB and a trim threshold of
1 GB keep those blocks in the heap: 0.34M faults and 7 s of system time, the same predictions.
Memory freed is kept for reuse rather than returned, so the resident set stays at its peak.

`dynjax` applies this when it is imported, before numpy or JAX start threads (the `dynjax`
command imports it first). Nothing happens off glibc, or with `DYNJAX_MALLOC=default`.
"""

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 256 * 2**20), (M_TRIM_THRESHOLD, 2**30))


def tune_malloc() -> bool:
    """Apply `SETTINGS` with glibc's `mallopt`; True when every one was accepted."""
    if os.environ.get("DYNJAX_MALLOC", "") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and others have no such symbol)
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)
