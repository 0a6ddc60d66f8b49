"""Input-shape buckets for use_hpip.

OpenVINO prepares kernels for every new input shape, and on these models that costs 1-3 times the
inference itself. OCR inputs rarely repeat a shape exactly, so the fast path pads each input up to
one of a few sizes and keeps the kernels of those in a bounded cache.
"""

from __future__ import annotations


def bucket(n: int) -> int:
    """n rounded up to a multiple of 32 and of 1/8 of its power of two: the padding is < 12.5%.

    Gives 8 sizes per octave: 32, 64, ..., 256, 288, ..., 512, 576, ..., 1024, 1152, ...
    """
    step = max(32, (1 << (max(n, 1).bit_length() - 1)) // 8)
    return -(-n // step) * step
