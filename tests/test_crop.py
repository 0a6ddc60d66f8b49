"""Line crops: upright quads on whole pixels are sliced with the warp's exact pixels; use_hpip's
bilinear affine warp of the others stays close to the official cubic perspective warp."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import DATA

from ocrflow.crop import crop_box, crop_quad
from ocrflow.det import _mini_box

GOLDEN = DATA / "golden"


def _warp(image, quad):
    """The official crop: cubic perspective warp of the quad, tall ones turned."""
    pts = quad.astype(np.float32)
    w = max(1, int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
    h = max(1, int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    out = cv2.warpPerspective(image, cv2.getPerspectiveTransform(pts, dst), (w, h),
                              borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(out) if out.shape[0] / out.shape[1] >= 1.5 else out


def _golden_quads():
    with open(GOLDEN / "reference.jsonl", encoding="utf-8") as f:
        refs = [json.loads(line) for line in f if line.strip()]
    for ref in refs:
        image = cv2.imread(str(GOLDEN / ref["path"]))
        for box in ref["dt_polys"]:
            yield image, _mini_box(np.array(box, np.int32))[0]


def _rect(x, y, w, h):
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


IMAGE = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)


@pytest.mark.parametrize("quad", [_rect(10, 20, 60, 15), _rect(5, 5, 12, 40), _rect(0, 0, 200, 120)])
def test_upright_quad_on_whole_pixels_is_a_read_only_slice_with_the_warps_pixels(quad):
    out = crop_quad(IMAGE, quad)
    np.testing.assert_array_equal(out, _warp(IMAGE, quad))
    assert np.shares_memory(out, IMAGE) and not out.flags.writeable  # a view, safe from writes
    np.testing.assert_array_equal(crop_quad(IMAGE, quad, fast=True), out)


@pytest.mark.parametrize("quad", [_rect(10.5, 20, 60, 15), _rect(190, 20, 15, 10), _rect(-2, 3, 20, 10)])
def test_other_quads_are_warped_as_before(quad):
    out = crop_quad(IMAGE, quad)  # half pixels, or past the edge (replicated border)
    np.testing.assert_array_equal(out, _warp(IMAGE, quad))
    assert not np.shares_memory(out, IMAGE)


def test_exact_crops_of_detected_lines_are_the_official_ones():
    n = sliced = 0
    for image, quad in _golden_quads():
        out = crop_quad(image, quad)
        np.testing.assert_array_equal(out, _warp(image, quad))
        n += 1
        sliced += np.shares_memory(out, image)
    assert n > 100 and 0 < sliced < n  # both ways were taken


def test_fast_crops_of_detected_lines_are_close_to_the_official_ones():
    diffs = []
    for image, quad in _golden_quads():
        fast, exact = crop_quad(image, quad, fast=True), _warp(image, quad)
        assert fast.shape == exact.shape
        diffs.append(np.abs(fast.astype(np.int16) - exact).mean())
    # bilinear vs cubic weights on sharp text edges: a few grey levels (a pixel's shift gives 10+)
    assert max(diffs) < 10 and np.mean(diffs) < 3


def test_crop_box_turns_tall_lines_and_takes_the_min_area_rect():
    box = np.array([[50, 10], [62, 10], [62, 90], [50, 90]])  # 12 x 80: read bottom to top
    out = crop_box(IMAGE, box)
    assert out.shape == (12, 80, 3)
    np.testing.assert_array_equal(out, np.rot90(IMAGE[10:90, 50:62]))
