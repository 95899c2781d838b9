"""The C allocator's settings for a long-running studio process (the web server).

glibc's `malloc` serves blocks above its *mmap threshold* with `mmap` (returned to the system when
freed) and smaller ones from its heaps, which keep freed memory for reuse. By default the threshold
moves: each freed mmapped block raises it to that block's size, up to 32 MB, so a server's
megabyte-sized buffers (audio, piano-roll pictures, numpy and torch temporaries) end up on the
heaps, which fragment, keep what was freed, and do not shrink.

Measured with `bench.soak` (the server's resident memory, median over the 100 calls after a
warm-up of 100 against the last 100 of 1,000; 2 shared CPU cores):

- glibc's moving threshold: memory climbed for about 250 calls (+10% after a 50-call warm-up in a
  shorter run; an earlier 1,000-call run ended 19% over its warm-up, by steps);
- fixed at 128 KB (glibc's starting value): +4%, 150 MB less, but every torch temporary above
  128 KB is then a fresh `mmap` whose pages fault in one by one: the AR-CNN and the GAN took
  2.1-2.4x their CPU time;
- fixed at 4 MB: +4.7%, as fast as glibc's default (the models' temporaries stay on the heaps;
  audio and the largest buffers are mmapped); with the free pages trimmed every 30 s: +2.5%.

`bound_heap_growth()` fixes the threshold at 4 MB; `start_heap_trimmer()` returns the heaps' free
pages to the system every 30 s (`malloc_trim`), so memory freed inside fragmented heaps does not
count as the server's. `app.py` calls both at start-up. Neither does anything where the C library
is not glibc (macOS, Windows, musl); the threshold is left alone when `MALLOC_MMAP_THRESHOLD_` is
set (the operator's choice).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading
import time

__all__ = ["MMAP_THRESHOLD_BYTES", "M_MMAP_THRESHOLD", "TRIM_PERIOD_S", "bound_heap_growth", "start_heap_trimmer"]

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h> parameter number for mallopt
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024  # above the models' temporaries (a 10-minute melody's: 2.4 MB)
TRIM_PERIOD_S = 30.0


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc on Linux, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def bound_heap_growth(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes with `mallopt`; True when it was set.

    False (and nothing changed) on other platforms and C libraries, when `MALLOC_MMAP_THRESHOLD_`
    is set in the environment, or when `mallopt` refuses the value. Never raises.
    """
    libc = _glibc()
    if libc is None or "MALLOC_MMAP_THRESHOLD_" in os.environ or not hasattr(libc, "mallopt"):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc.mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1  # mallopt returns 1 on success, 0 on error


def start_heap_trimmer(period_s: float = TRIM_PERIOD_S) -> threading.Thread | None:
    """A daemon thread that calls glibc's `malloc_trim(0)` every `period_s` seconds (it gives the free
    pages inside the heaps back to the system); None where the C library is not glibc."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return None
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> None:
        while True:
            time.sleep(period_s)
            trim(0)

    thread = threading.Thread(target=run, name="heap-trimmer", daemon=True)
    thread.start()
    return thread
