"""Cropping text regions: the minAreaRect of each quad, warped upright from the original image."""

from __future__ import annotations

import cv2
import numpy as np

from .det import _mini_box


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-warp a TL, TR, BR, BL quad out of the image (cubic, replicate border).

    Tall results (h / w >= 1.5) are turned 90 degrees counter-clockwise so vertical lines read
    horizontally, as PaddleOCR does.
    """
    pts = quad.astype(np.float32)
    w = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    h = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    w, h = max(w, 1), max(h, 1)  # a degenerate box still yields a (blank) crop
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(pts, dst)
    crop = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return crop


def crop_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """PaddleX's crop of a detected quad: warp its minAreaRect, not the raw quad."""
    quad, _ = _mini_box(np.asarray(box).astype(np.int32))
    return crop_quad(image, quad)
