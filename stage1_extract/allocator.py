"""glibc malloc settings for stage 1's processes: keep freed memory for reuse instead of handing it
back to the kernel.

At stage 1's batch sizes every large activation (the RGB encoder's feature maps, a decoded frame)
is above glibc's mmap threshold, so each allocation is a fresh mmap the kernel zero-fills page by
page and each free unmaps it: 20-26 thousand page faults per crop, half the encoder's CPU time.
Serving them from the heap and never trimming it (the same as MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=<huge> in the environment) reuses the same pages; the numbers computed are
the same (bench/bench_allocator.py measures both). The cost: a process keeps its peak heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # bytes of free heap top kept before trimming: the largest int mallopt takes


def keep_freed_memory() -> bool:
    """Allocate large blocks from the heap (no mmap) and never trim it; False where the C library is
    not glibc (nothing changed)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
