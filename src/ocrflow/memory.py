"""How the process takes memory from the operating system and gives it back (process_tuning only).

Freed heap goes back now and then (glibc's malloc_trim). Each prediction allocates and frees tens of
MiB (input tensors, score maps, the models' own buffers) from several threads. glibc keeps what is
freed inside its arenas for reuse, so the process's RSS creeps up to the high-water mark of every
arena and stays there. Trimming every TRIM_EVERY predictions returns the free pages
(benchmarks/soak.py --use_hpip --max_side 960): the peak RSS of each 500 predictions stayed within
952-1,020 MiB over 10,000, resting at 730-765 MiB between trims; untrimmed it went from 989 to 1,089
MiB by 3,200. Each call takes ~7 ms, and holds other threads' malloc for that long.
OCRFLOW_TRIM_EVERY=N changes the interval; 0 turns it off.

NumPy asks the kernel for transparent huge pages for every array of 4 MiB or more. A page's image
(26 MiB for a 2481 x 3508 receipt) is such an array, new for each page, and a huge page is zeroed
whole when first touched. On the VM this was measured on (2 vCPUs, free memory handed back to its
host), decoding such a receipt took 0.13-0.31 s of CPU in huge pages and 35-40 ms in small ones,
and use_hpip's main thread waited 0.5-0.8 s in all for pages read ahead over 30 receipts and 20
photos (none in small pages). small_pages() turns NumPy's request off (its NUMPY_MADVISE_HUGEPAGE=0).
"""

from __future__ import annotations

import ctypes
import importlib
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


def _hugepage_switch():
    """NumPy's setter of its huge-page request (returns the previous setting); None where absent."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # NumPy 2.x, 1.x
        try:
            return importlib.import_module(name)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
    return None


def small_pages() -> bool:
    """Stop NumPy asking for huge pages for its large arrays, unless NUMPY_MADVISE_HUGEPAGE is set
    (the user's choice stands). True where the request was on and is now off."""
    switch = _hugepage_switch()
    if switch is None or "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    return bool(switch(False))


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
