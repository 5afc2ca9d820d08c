"""The process's heap, tuned for streaming big bodies through Python."""

from __future__ import annotations

import ctypes
import os

M_TOP_PAD = -2  # glibc <malloc.h>
TOP_PAD_BYTES = 16 * 1024 * 1024


def keep_heap_slack() -> bool:
    """Ask glibc to keep 16 MiB free at the top of the heap instead of handing it back at once.

    A streamed body allocates and frees buffers of 64-128 KB per chunk (the chunk, the splitter's
    buffer, the joined output). At glibc's default the heap is trimmed after each free and the next
    chunk faults the same pages in again: on a 50 MB body a third of the JSON pipeline's time went
    to the kernel (bench/run.py, pipeline: 79 -> 136 MB/s with the slack). RSS grows by at most
    the slack. Returns whether it was set: not off glibc, and not over an operator's own
    MALLOC_TOP_PAD_.
    """
    if "MALLOC_TOP_PAD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_TOP_PAD, TOP_PAD_BYTES))
