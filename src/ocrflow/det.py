"""Text detection: resize and normalise for the DB model, DB post-processing, reading order.

Pure numpy/OpenCV functions, rule for rule as the PaddleX 3.x OCR pipeline on PP-OCRv4
(see docs/dev/pipeline-facts.md sections 1-2): limit 960/max, multiples of 32, ImageNet mean/std on
the BGR image, DB 0.3/0.6/1.5, fast box score, no dilation, TL-y-then-x order with the
10 px bubble pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

from .errors import ConfigError

LIMIT_TYPES = ("max", "min", "resize_long")
MIN_SIZE = 3
# ImageNet numbers applied to BGR channels, as the exported model expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def norm_coefficients(mean=IMAGENET_MEAN, std=IMAGENET_STD, scale: float = 1 / 255) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta) with x * alpha + beta == (x * scale - mean) / std, per channel, float32."""
    mean_ = np.array(mean, dtype=np.float32)
    std_ = np.array(std, dtype=np.float32)
    return (np.float32(scale) / std_).astype(np.float32), (-mean_ / std_).astype(np.float32)


_ALPHA, _BETA = norm_coefficients()

@dataclass(frozen=True)
class DetParams:
    """Detection settings; immutable so per-call overrides never touch shared state."""

    limit_side_len: int = 960
    limit_type: str = "max"
    max_side_limit: int = 4000
    thresh: float = 0.3
    box_thresh: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000

    def __post_init__(self) -> None:
        if self.limit_type not in LIMIT_TYPES:
            raise ConfigError(f"limit_type must be one of {LIMIT_TYPES}, got {self.limit_type!r}")
        for name in ("limit_side_len", "max_side_limit", "max_candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("thresh", "box_thresh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
        value = self.unclip_ratio
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"unclip_ratio must be a positive number, got {value!r}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) as float32, in a new array (a large negative x gives 0, not a warning)."""
    out = np.negative(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def resize_shape(h: int, w: int, limit_side_len: int, limit_type: str, max_side_limit: int) -> tuple[int, int]:
    """Target (h, w) of the detection input: the limit rule, the side cap, then multiples of 32."""
    if limit_type == "max":
        ratio = limit_side_len / (h if h > w else w) if max(h, w) > limit_side_len else 1.0
    elif limit_type == "min":
        ratio = limit_side_len / (h if h < w else w) if min(h, w) < limit_side_len else 1.0
    else:  # resize_long
        ratio = limit_side_len / max(h, w)
    resize_h, resize_w = int(h * ratio), int(w * ratio)
    if max(resize_h, resize_w) > max_side_limit:
        ratio = max_side_limit / max(resize_h, resize_w)
        resize_h, resize_w = int(resize_h * ratio), int(resize_w * ratio)
    # Python's round (banker's rounding) is part of the rule.
    return max(int(round(resize_h / 32) * 32), 32), max(int(round(resize_w / 32) * 32), 32)


def input_size(h: int, w: int, params: DetParams) -> tuple[int, int]:
    """(H', W') of the model input that `preprocess` makes from an h x w image."""
    if h + w < 64:  # tiny images are zero-padded to at least 32x32 first
        h, w = max(32, h), max(32, w)
    return resize_shape(h, w, params.limit_side_len, params.limit_type, params.max_side_limit)


def _resized(image: np.ndarray, params: DetParams, channels: int) -> tuple[np.ndarray, int, int]:
    """The image resized to the detection input size (tiny ones zero-padded to 32 px first)."""
    if image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(f"detection needs an H x W x {channels} image, got shape {image.shape}")
    h, w = image.shape[:2]
    if h + w < 64:
        padded = np.zeros((max(32, h), max(32, w), channels), np.uint8)
        padded[:h, :w] = image
        image = padded
    rh, rw = input_size(h, w, params)
    return (cv2.resize(image, (rw, rh)) if (rh, rw) != image.shape[:2] else image), rh, rw


def preprocess(image: np.ndarray, params: DetParams, norm: tuple[np.ndarray, np.ndarray] | None = None,
               round_size: Callable[[int], int] | None = None) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 1x3xH'xW' model input; norm = (alpha, beta), ImageNet by default.

    round_size (use_hpip): zero-pad at the bottom and right to round_size(H') x round_size(W'), for
    few distinct input shapes; the caller crops the output back to `input_size`.
    """
    alpha, beta = norm if norm is not None else (_ALPHA, _BETA)
    resized, rh, rw = _resized(image, params, len(alpha))
    if round_size is None:
        out = np.empty((1, 3, rh, rw), np.float32)
    else:
        out = np.zeros((1, 3, round_size(rh), round_size(rw)), np.float32)
    # Channel by channel straight into the planar output: no float HWC copy to transpose
    # (10x faster than astype + transpose, the same float32 values).
    for c, plane in enumerate(cv2.split(resized)):
        view = out[0, c, :rh, :rw]
        np.multiply(plane, alpha[c], out=view, dtype=np.float32)
        view += beta[c]
    return out


def preprocess_pixels(image: np.ndarray, params: DetParams, norm: tuple[np.ndarray, np.ndarray] | None = None,
                      round_size: Callable[[int], int] | None = None) -> np.ndarray:
    """BGR uint8 HxWx3 -> uint8 1xH'xW'x3, for a model that normalises its own input (use_hpip).

    round_size pads as `preprocess` does, with the pixel nearest the mean (a model input ~0, as
    preprocess's zeros).
    """
    alpha, beta = norm if norm is not None else (_ALPHA, _BETA)
    resized, rh, rw = _resized(image, params, len(alpha))
    shape = (rh, rw) if round_size is None else (round_size(rh), round_size(rw))
    if shape == (rh, rw):
        return np.ascontiguousarray(resized)[None]
    pad = np.clip(np.round(-beta / alpha), 0, 255).tolist()
    return cv2.copyMakeBorder(resized, 0, shape[0] - rh, 0, shape[1] - rw, cv2.BORDER_CONSTANT, value=pad)[None]


def _mini_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """minAreaRect of points as a TL, TR, BR, BL quad (float32) and its short side."""
    rect = cv2.minAreaRect(points)
    box = cv2.boxPoints(rect)
    xs, ys = box.T.tolist()
    a, b, c, d = sorted(range(4), key=xs.__getitem__)  # by x, stable
    left = (a, b) if ys[b] > ys[a] else (b, a)
    right = (c, d) if ys[d] > ys[c] else (d, c)
    return box[[left[0], right[0], right[1], left[1]]], min(rect[1])


def _box_score_fast(pred: np.ndarray, quad: np.ndarray) -> float:
    """Mean probability inside the quad, over its clipped bounding box."""
    h, w = pred.shape
    (x0, y0), (x1, y1) = quad.min(axis=0).tolist(), quad.max(axis=0).tolist()
    xmin = min(max(math.floor(x0), 0), w - 1)
    xmax = min(max(math.ceil(x1), 0), w - 1)
    ymin = min(max(math.floor(y0), 0), h - 1)
    ymax = min(max(math.ceil(y1), 0), h - 1)
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = quad - np.array([xmin, ymin], dtype=np.float32)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(pred[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def _unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    """Grow the quad by area * ratio / perimeter (pyclipper round offset); None if it splits."""
    distance = cv2.contourArea(quad) * ratio / cv2.arcLength(quad, True)
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(quad, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.array(expanded[0], dtype=np.int32).reshape(-1, 1, 2)


def postprocess(pred: np.ndarray, src_h: int, src_w: int, params: DetParams) -> tuple[np.ndarray, list[float]]:
    """DB probability map (H'xW') -> quads in source pixels (N x 4 x 2 int32) and their scores."""
    bitmap = np.greater(pred, params.thresh).view(np.uint8)  # 0 / 1: findContours reads non-zero as 1
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    height, width = pred.shape
    quads, scores = [], []
    for contour in contours[: params.max_candidates]:
        quad, short_side = _mini_box(contour)
        if short_side < MIN_SIZE:
            continue
        score = _box_score_fast(pred, quad)
        if params.box_thresh > score:
            continue
        expanded = _unclip(quad, params.unclip_ratio)
        if expanded is None:
            continue
        quad, short_side = _mini_box(expanded)
        if short_side < MIN_SIZE + 2:
            continue
        quads.append(quad)
        scores.append(float(score))
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.int32), []
    # scaled in float64, rounded half to even, as PaddleX computes it
    boxes = np.array(quads, dtype=np.float64)
    boxes[..., 0] = np.clip(np.round(boxes[..., 0] * (src_w / width)), 0, src_w)
    boxes[..., 1] = np.clip(np.round(boxes[..., 1] * (src_h / height)), 0, src_h)
    return boxes.astype(np.int32), scores


def sort_boxes(boxes: np.ndarray, scores: list[float]) -> tuple[np.ndarray, list[float]]:
    """Reading order: top-left y then x, then swap neighbours on one line (|dy| < 10) left to right."""
    order = sorted(range(len(boxes)), key=lambda i: (int(boxes[i][0][1]), int(boxes[i][0][0])))
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            a, b = boxes[order[j]][0], boxes[order[j + 1]][0]
            if abs(int(b[1]) - int(a[1])) < 10 and int(b[0]) < int(a[0]):
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return boxes[order].reshape(-1, 4, 2), [scores[i] for i in order]
