"""Text recognition: per-crop resize and normalise, batching plan, CTC greedy decode.

Rule for rule as the PaddleX 3.x pipeline (docs/dev/pipeline-facts.md sections 4-5): height 48; each crop
resized by its own ratio to min(ceil(48*w/h), int(48*max(320/48, w/h))) and right-padded with
zeros to the widest in its batch; crops sorted by w/h (stable) and cut into batches; CTC with blank
0 and the score = mean of the kept max-probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

REC_HEIGHT = 48
REC_WIDTH = 320
MAX_WIDTH = 3200  # wider crops are squashed to this width
HPIP_MIN_WIDTH = 32  # use_hpip: a crop is as wide as its ratio says, at least this
NORM = ((2 / 255,) * 3, (-1.0,) * 3)  # per channel: x * alpha + beta == (x / 255 - 0.5) / 0.5
PIXEL_PAD = 128  # batch_pixels' padding: 0.004 after normalisation (batch_input pads with 0)


def _widths(h: int, w: int, height: int, base_width: int) -> tuple[int, int]:
    """(resized width, padded width) of an h x w crop: W = int(height * max(base ratio, w/h))."""
    ratio = w / h
    width = int(height * max(base_width / height, ratio))
    if width > MAX_WIDTH:  # squashed to the cap
        return MAX_WIDTH, MAX_WIDTH
    return min(int(math.ceil(height * ratio)), width), width


def _fill(slot: np.ndarray, crop: np.ndarray, resized_w: int) -> None:
    """Resize the crop into slot[:, :, :resized_w] (3 x height x W, float32) as (x / 255 - 0.5) / 0.5."""
    view = slot[:, :, :resized_w]
    resized = cv2.resize(crop, (resized_w, slot.shape[1]))
    np.divide(resized.transpose(2, 0, 1), 255, out=view, dtype=np.float32)  # = astype(float32) / 255
    view -= 0.5
    view /= 0.5


def resize_norm(crop: np.ndarray, height: int = REC_HEIGHT, base_width: int = REC_WIDTH) -> np.ndarray:
    """BGR crop -> float32 3 x height x W in [-1, 1], W = int(height * max(base ratio, w/h))."""
    resized_w, width = _widths(*crop.shape[:2], height, base_width)
    out = np.zeros((3, height, width), dtype=np.float32)
    _fill(out, crop, resized_w)
    return out


def _batch_widths(crops: list[np.ndarray], height: int, base_width: int,
                  round_width: Callable[[int], int] | None) -> tuple[list[int], int]:
    """Each crop's resized width, and the batch's width: the widest padded one, rounded if asked."""
    widths = [_widths(*c.shape[:2], height, base_width) for c in crops]
    width = max(w for _, w in widths)
    return [w for w, _ in widths], (round_width(width) if round_width is not None else width)


def batch_input(crops: list[np.ndarray], height: int = REC_HEIGHT, base_width: int = REC_WIDTH,
                round_width: Callable[[int], int] | None = None) -> np.ndarray:
    """pad_batch([resize_norm(c) for c in crops], round_width), each crop written in place once."""
    widths, width = _batch_widths(crops, height, base_width, round_width)
    out = np.zeros((len(crops), 3, height, width), dtype=np.float32)
    for slot, crop, resized_w in zip(out, crops, widths):
        _fill(slot, crop, resized_w)
    return out


def batch_pixels(crops: list[np.ndarray], height: int = REC_HEIGHT, base_width: int = REC_WIDTH,
                 round_width: Callable[[int], int] | None = None) -> np.ndarray:
    """batch_input's layout before normalisation: uint8 N x height x W x 3, each crop resized as
    resize_norm does, for a model that normalises its own input (use_hpip). The padding is 128,
    which normalises to 0.004 (batch_input pads with 0)."""
    for crop in crops:  # cv2.resize writes into the batch only if the types match
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"recognition needs H x W x 3 uint8 crops, got {crop.dtype} {crop.shape}")
    widths, width = _batch_widths(crops, height, base_width, round_width)
    out = np.full((len(crops), height, width, 3), PIXEL_PAD, dtype=np.uint8)
    for slot, crop, resized_w in zip(out, crops, widths):
        cv2.resize(crop, (resized_w, height), dst=slot[:, :resized_w])  # written in place
    return out


def batch_plan(crops: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices of the crops, sorted by aspect ratio (stable), cut into batches."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(items: list[np.ndarray], round_width: Callable[[int], int] | None = None) -> np.ndarray:
    """Stack 3 x H x W_i arrays into N x 3 x H x max(W_i), zero-padded on the right.

    round_width (use_hpip) maps the widest W_i to the width of the batch, e.g. shapes.bucket.
    """
    width = max(x.shape[2] for x in items)
    if round_width is not None:
        width = round_width(width)
    out = np.zeros((len(items), *items[0].shape[:2], width), dtype=np.float32)
    for k, x in enumerate(items):
        out[k, :, :, : x.shape[2]] = x
    return out


def char_table(chars: list[str], num_classes: int) -> list[str]:
    """Index -> character for a model with num_classes outputs.

    A PaddleOCR dictionary lists the characters only: blank goes first and a space last. A list
    that already has num_classes entries (e.g. PP-OCRv5's keys file) is used as it is.
    """
    if len(chars) == num_classes:
        return list(chars)
    if len(chars) + 2 == num_classes:
        return ["blank", *chars, " "]
    if len(chars) + 1 == num_classes:
        return ["blank", *chars]
    raise ValueError(
        f"the dictionary has {len(chars)} characters but the model predicts {num_classes} classes"
    )


def ctc_decode(probs: np.ndarray, table: list[str]) -> list[tuple[str, float]]:
    """Greedy CTC over N x T x C probabilities: collapse repeats, drop blank (0). The probabilities
    are float32, or bfloat16 bit patterns as uint16 (use_hpip on OpenVINO): non-negative numbers'
    patterns order as their values do, so the best class is found on the patterns themselves."""
    idx = probs.argmax(axis=2)
    best = np.take_along_axis(probs, idx[..., None], axis=2)[..., 0]  # = max, without a second pass
    if best.dtype == np.uint16:
        best = bf16_to_f32(best)
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    counts = keep.sum(axis=1).tolist()
    results = []
    for seq, conf, kept, n in zip(idx.tolist(), best, keep, counts):
        # keep's rule again, on Python ints: faster than indexing each row with its mask
        text = "".join([table[i] for i, prev in zip(seq, [-1, *seq]) if i != prev and i != 0])
        # PaddleX's np.mean over the kept maxima, to the bit: float32 pairwise sum / float32 count
        results.append((text, float(np.add.reduce(conf[kept]) / np.float32(n)) if n else 0.0))
    return results


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> the float32 numbers they stand for, exactly."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def ctc_columns(probs: np.ndarray) -> list[list[int]]:
    """For each line of N x T x C probabilities, the output column of each character ctc_decode keeps."""
    idx = probs.argmax(axis=2)
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    return [np.flatnonzero(row).tolist() for row in keep]
