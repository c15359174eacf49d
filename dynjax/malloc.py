"""glibc malloc tuned for XLA:CPU's per-step buffers, applied to the process at import.

XLA:CPU allocates each step's temporaries (tens of MB) with malloc, on its worker threads. glibc
serves a worker thread from a secondary arena, whose heaps are at most 64 MB, so each such block
is mmap'd and munmap'd on free, and the next step faults every page of it in again: on the
embedded default 15.5M minor page faults and 25 s of system time in a 95 s run. One arena (the
main one, which grows without that limit) and mmap and trim thresholds at the largest value
mallopt takes (a C int: 2 GB) keep those blocks in the heap: 0.34M faults and 7 s of system time,
the same predictions. The thresholds must pass the largest block: a step's temporaries are one
block that grows with its rows and features (652 MB for 16 eras x 512 rows at Numerai's 2,748
features, where a 256 MB threshold faulted 167K pages in a step, 66 % of its user CPU in system
time, and made the step 1.5x slower). Memory freed is kept for reuse rather than returned, so the
resident set stays at its peak.

`dynjax` applies this when it is imported, before numpy or JAX start threads (the `dynjax`
command imports it first). `DYNJAX_MALLOC=lean` trades that speed for memory: thresholds of 256
MB and 1 GB, so that larger blocks go back to the system when freed and every step faults them
in again (`benchmarks/README.md`: the step at 2,748 features, and a Numerai-width run's stages and
peak memory under both). Nothing happens off glibc, or with `DYNJAX_MALLOC=default`.
"""

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters
LARGEST = 2**31 - 1  # mallopt's value is a C int
# DYNJAX_MALLOC: its (parameter, value) pairs; "default" leaves glibc's own.
MODES = {"": ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, LARGEST), (M_TRIM_THRESHOLD, LARGEST)),
         "lean": ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 256 * 2**20), (M_TRIM_THRESHOLD, 2**30)),
         "default": ()}


def tune_malloc() -> bool:
    """Apply the settings `DYNJAX_MALLOC` names with glibc's `mallopt`; True when every one was accepted."""
    mode = os.environ.get("DYNJAX_MALLOC", "")
    if mode not in MODES:
        raise ValueError(f"DYNJAX_MALLOC={mode!r}: unset (fastest), 'lean' (less memory) or 'default' (glibc's own)")
    if not MODES[mode]:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and others have no such symbol)
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in MODES[mode])
