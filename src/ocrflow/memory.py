"""Give freed heap memory back to the operating system now and then (glibc's malloc_trim).

Each prediction allocates and frees tens of MiB (input tensors, score maps, the models' own
buffers) from several threads. glibc keeps what is freed inside its arenas for reuse, so the
process's RSS creeps up to the high-water mark of every arena and stays there. Trimming every
TRIM_EVERY predictions returns the free pages (benchmarks/soak.py --use_hpip --max_side 960): the
peak RSS of each 500 predictions stayed within 952-1,020 MiB over 10,000, resting at 730-765 MiB
between trims; untrimmed it went from 989 to 1,089 MiB by 3,200. Each call takes ~7 ms, and holds
other threads' malloc for that long. OCRFLOW_TRIM_EVERY=N changes the interval; 0 turns it off.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys

TRIM_EVERY = int(os.environ.get("OCRFLOW_TRIM_EVERY", "100"))


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_trim = _malloc_trim()
_count = itertools.count(1)  # next() on it is atomic under the GIL: safe from request threads


def trim() -> bool:
    """Return free heap pages to the OS now; False where the C library cannot."""
    if _trim is None:
        return False
    _trim(0)
    return True


def after_prediction() -> None:
    """Count a prediction; trim on every TRIM_EVERY-th."""
    if TRIM_EVERY > 0 and next(_count) % TRIM_EVERY == 0:
        trim()
