"""Cropping text regions: the minAreaRect of each quad, warped upright from the original image."""

from __future__ import annotations

import cv2
import numpy as np

from .det import _mini_box
from .words import CropFrame

_SNAP = 1e-3  # corners this close to whole pixels map pixel centres onto pixel centres


def crop_quad(image: np.ndarray, quad: np.ndarray, fast: bool = False) -> np.ndarray:
    """Cut a TL, TR, BR, BL quad out of the image, upright (cubic perspective warp, replicate border).

    Tall results (h / w >= 1.5) are turned 90 degrees counter-clockwise so vertical lines read
    horizontally, as PaddleOCR does. An upright quad on whole pixels inside the image is sliced,
    not warped: the same pixels (cubic weights at whole pixels are 0, 1, 0, 0), several times
    faster; the result is then a read-only view of the image. fast=True (use_hpip) needs a
    rectangle, as minAreaRect gives: it is warped affinely from three corners with bilinear
    weights, 2x faster, a few grey levels from the cubic warp.
    """
    pts = quad.astype(np.float32)
    w, h = _size(pts)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    crop = _slice(image, pts, dst)
    if crop is None and fast:
        matrix = cv2.getAffineTransform(pts[:3], dst[:3])
        crop = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_LINEAR)
    elif crop is None:
        matrix = cv2.getPerspectiveTransform(pts, dst)
        crop = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return crop


def _size(pts: np.ndarray) -> tuple[int, int]:
    """The crop's width and height: the longer of each pair of opposite sides, at least 1 pixel."""
    w = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    h = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    return max(w, 1), max(h, 1)  # a degenerate box still yields a (blank) crop


def _slice(image: np.ndarray, pts: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """image[y:y+h, x:x+w] (read-only) if the warp of pts onto dst is a whole-pixel shift inside the image."""
    origin = np.round(pts[0])
    if np.abs(pts - origin - dst).max() > _SNAP:
        return None
    x, y = int(origin[0]), int(origin[1])
    h, w = int(dst[2, 1]), int(dst[2, 0])
    if x < 0 or y < 0 or y + h > image.shape[0] or x + w > image.shape[1]:
        return None  # the warp would replicate the border
    view = image[y : y + h, x : x + w]
    view.flags.writeable = False
    return view


def crop_box(image: np.ndarray, box: np.ndarray, fast: bool = False) -> np.ndarray:
    """PaddleX's crop of a detected quad: its minAreaRect, cut out as crop_quad does (possibly a
    read-only view of the image; fast=True for use_hpip's bilinear warp)."""
    quad, _ = _mini_box(np.asarray(box).astype(np.int32))
    return crop_quad(image, quad, fast)


def crop_frame(box: np.ndarray, turned: bool = False) -> CropFrame:
    """The geometry crop_box gives a detected quad (to map points of the crop back to the image);
    turned: the crop was then turned 180 degrees (text line orientation), so it reads from the far corner."""
    quad, _ = _mini_box(np.asarray(box).astype(np.int32))
    pts = quad.astype(np.float32)
    if turned:
        pts = np.roll(pts, 2, axis=0)
    w, h = _size(pts)
    return CropFrame(pts, w, h, h / w >= 1.5)
