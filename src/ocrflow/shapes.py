"""Input-shape buckets for use_hpip.

OpenVINO prepares kernels for every new input shape, and on these models that costs 1-3 times the
inference itself. OCR inputs rarely repeat a shape exactly, so the fast path pads each input up to
one of a few sizes and keeps the kernels of those in a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


def bucket(n: int) -> int:
    """n rounded up to a multiple of 32 and of 1/8 of its power of two: the padding is < 12.5%.

    Gives 8 sizes per octave: 32, 64, ..., 256, 288, ..., 512, 576, ..., 1024, 1152, ...
    """
    step = max(32, (1 << (max(n, 1).bit_length() - 1)) // 8)
    return -(-n // step) * step


class RecentShapes:
    """The last `capacity` shapes a model ran, as its engine's kernel cache holds them (LRU)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._shapes: OrderedDict[tuple, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, shape) -> bool:
        return tuple(shape) in self._shapes

    def add(self, shape) -> None:
        with self._lock:
            self._shapes[tuple(shape)] = None
            self._shapes.move_to_end(tuple(shape))
            if len(self._shapes) > self.capacity:
                self._shapes.popitem(last=False)
