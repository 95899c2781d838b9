"""The C allocator's settings for a long-running studio process (the web server).

glibc's `malloc` serves blocks above its *mmap threshold* with `mmap` (returned to the system when
freed) and smaller ones from its heaps. By default that threshold moves: each freed mmapped block
raises it (up to 32 MB), so the many short-lived megabyte-sized buffers of a request (piano rolls,
audio, numpy and torch temporaries) end up on the heaps, which fragment and do not shrink. A soak of
1,000 `/accompany` calls grew the server 19% after warm-up that way; with the threshold fixed at
128 KB, 1%. Fixing it (as the environment variable `MALLOC_MMAP_THRESHOLD_` does) also stops the
threshold from moving.

`bound_heap_growth()` is called at start-up (`app.py`); it does nothing where the C library is not
glibc (macOS, Windows, musl) or when `MALLOC_MMAP_THRESHOLD_` is already set (the operator's choice).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["MMAP_THRESHOLD_BYTES", "M_MMAP_THRESHOLD", "bound_heap_growth"]

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h> parameter number for mallopt
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed instead of moving


def bound_heap_growth(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes with `mallopt`; True when it was set.

    False (and nothing changed) on other platforms and C libraries, when `MALLOC_MMAP_THRESHOLD_`
    is set in the environment, or when `mallopt` refuses the value. Never raises.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1  # mallopt returns 1 on success, 0 on error
