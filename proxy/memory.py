"""The process's heap, tuned for streaming big bodies through Python."""

from __future__ import annotations

import ctypes
import gc
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


GEN0_THRESHOLD = 10_000
"""Container allocations between two young collections (CPython's default: 700)."""


def settle_heap() -> None:
    """Once start-up is done (policies and spec compiled, app built, listening): collect, freeze what
    survived, and collect the young generation less often.

    Everything alive now lives as long as the process (or until a reload replaces it); frozen, no
    collection walks it again. A policed page allocates thousands of containers (a parsed record is
    several dicts), so at the default threshold young collections run several times per request,
    each walking what the request still holds; at 10 000 they run about once per few requests.
    Only cycles wait longer to be freed; plain garbage is freed by reference counting as before.
    Measured end to end by callgrind (`bench/run.py --instructions-only`, N=10): the restricted
    100 KB page 26.55 M -> 24.58 M instructions per request (-7.4%); the relay and the all-visible
    page unchanged (1.19/1.20 M, 3.69/3.74 M). Nearly all of it is the freeze (full collections no
    longer walk the start-up heap): freeze alone 24.66 M; the threshold on top saves a little more
    on the restricted page (N=30: 24.79 -> 24.63 M) and nothing elsewhere (3.76/3.77 M).
    A config reloaded later is not frozen; one replaced keeps what of it was frozen and cyclic
    (reloads are rare).
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
