"""Tests for ocrflow.det: resize rule, normalisation, DB post-processing, reading order, DetParams.

Pure numpy/OpenCV; no model is loaded. The expected numbers are worked out by hand from the
rules in docs/dev/pipeline-facts.md sections 1-2.
"""

from __future__ import annotations

import numpy as np
import pytest

from ocrflow import det
from ocrflow.det import DetParams, postprocess, preprocess, resize_shape, sort_boxes
from ocrflow.errors import ConfigError

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


# -- resize_shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hw", "limit", "limit_type", "side_limit", "expected"),
    [
        # max: never upscales; sides rounded half to even to multiples of 32
        ((464, 464), 960, "max", 4000, (448, 448)),  # 14.5 -> 14
        ((496, 496), 960, "max", 4000, (512, 512)),  # 15.5 -> 16
        ((480, 480), 960, "max", 4000, (480, 480)),
        ((300, 500), 960, "max", 4000, (288, 512)),  # 9.375 -> 9, 15.625 -> 16: no upscaling
        ((528, 896), 960, "max", 4000, (512, 896)),  # the demo image
        ((1920, 1080), 960, "max", 4000, (960, 544)),  # ratio 0.5 on the long side
        ((1080, 1920), 960, "max", 4000, (544, 960)),
        ((48, 48), 960, "max", 4000, (64, 64)),  # 1.5 -> 2
        # minimum 32
        ((10, 10), 960, "max", 4000, (32, 32)),
        ((16, 16), 960, "max", 4000, (32, 32)),  # 0.5 -> 0 -> 32
        ((5, 1000), 960, "max", 4000, (32, 960)),
        # min: short side up to the limit, never downscaling
        ((100, 200), 960, "min", 4000, (960, 1920)),
        ((2000, 3000), 960, "min", 4000, (1984, 3008)),  # 62.5 -> 62, 93.75 -> 94
        # resize_long: always rescales the long side to the limit
        ((100, 50), 960, "resize_long", 4000, (960, 480)),
        ((2000, 1000), 960, "resize_long", 4000, (960, 480)),
        # max_side_limit caps the long side after the rule
        ((100, 800), 960, "min", 3840, (480, 3840)),  # 960 x 7680 -> halved
        ((100, 1000), 960, "min", 4000, (384, 4000)),
        ((100, 8000), 960, "resize_long", 4000, (32, 960)),  # no cap needed
    ],
)
def test_resize_shape(hw, limit, limit_type, side_limit, expected):
    assert resize_shape(*hw, limit, limit_type, side_limit) == expected


def test_resize_shape_outputs_multiples_of_32():
    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 5000, size=(200, 2)):
        for limit_type in ("max", "min", "resize_long"):
            rh, rw = resize_shape(int(h), int(w), 960, limit_type, 4000)
            assert rh % 32 == 0 and rw % 32 == 0
            assert rh >= 32 and rw >= 32
            if limit_type == "max":
                assert max(rh, rw) <= 960 + 16  # rounding can add at most 16


# -- preprocess -----------------------------------------------------------------------------------


def test_preprocess_shape_dtype_and_bgr_imagenet_normalisation():
    image = np.empty((64, 96, 3), np.uint8)
    image[:] = (255, 0, 128)  # B, G, R
    x = preprocess(image, DetParams())
    assert x.shape == (1, 3, 64, 96)
    assert x.dtype == np.float32
    assert x.flags["C_CONTIGUOUS"]
    # channel k of the BGR image is normalised with ImageNet mean[k] / std[k]
    expected = (np.array([255, 0, 128]) / 255 - MEAN) / STD
    for c in range(3):
        np.testing.assert_allclose(x[0, c], expected[c], rtol=0, atol=1e-5)


def test_preprocess_resizes_by_the_limit_rule():
    image = np.zeros((1920, 1080, 3), np.uint8)
    assert preprocess(image, DetParams()).shape == (1, 3, 960, 544)
    assert preprocess(image, DetParams(limit_side_len=480)).shape == (1, 3, 480, 256)
    small = np.zeros((100, 200, 3), np.uint8)
    assert preprocess(small, DetParams()).shape == (1, 3, 96, 192)
    assert preprocess(small, DetParams(limit_type="min", limit_side_len=320)).shape == (1, 3, 320, 640)


def test_preprocess_pads_tiny_images_with_zeros():
    image = np.full((20, 30, 3), 200, np.uint8)  # h + w = 50 < 64: padded to 32 x 32 first
    x = preprocess(image, DetParams())
    assert x.shape == (1, 3, 32, 32)
    zero = -MEAN / STD
    value = (200 / 255 - MEAN) / STD
    for c in range(3):
        np.testing.assert_allclose(x[0, c, :20, :30], value[c], atol=1e-5)  # the image, not stretched
        np.testing.assert_allclose(x[0, c, 20:, :], zero[c], atol=1e-5)  # bottom padding
        np.testing.assert_allclose(x[0, c, :, 30:], zero[c], atol=1e-5)  # right padding


def test_preprocess_does_not_pad_at_64():
    image = np.full((32, 32, 3), 200, np.uint8)  # h + w == 64: no padding, no resize
    x = preprocess(image, DetParams())
    assert x.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(x[0, 0], (200 / 255 - MEAN[0]) / STD[0], atol=1e-5)


# -- postprocess ----------------------------------------------------------------------------------


def _map(h: int = 64, w: int = 128) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def test_postprocess_one_rectangle_unclipped_and_scaled():
    pred = _map()
    pred[20:40, 30:90] = 0.9  # contour points x 30..89, y 20..39 -> 59 x 19
    boxes, scores = postprocess(pred, 128, 256, DetParams())  # source is twice the map size
    # unclip distance = 59*19*1.5 / (2*(59+19)) = 10.78 px on the map, then x2 to the source
    assert boxes.shape == (1, 4, 2)
    assert np.issubdtype(boxes.dtype, np.integer)
    np.testing.assert_array_equal(boxes[0], [[38, 18], [200, 18], [200, 100], [38, 100]])
    assert scores == [pytest.approx(0.9, abs=1e-6)]


def test_postprocess_clips_to_source_size_not_size_minus_one():
    pred = _map()
    pred[0:20, 100:128] = 0.9  # touches the top and right borders; unclip grows past them
    boxes, _ = postprocess(pred, 64, 128, DetParams())
    assert len(boxes) == 1
    assert boxes[..., 0].max() == 128  # clipped to W, not W - 1
    assert boxes[..., 1].min() == 0
    assert boxes[..., 0].min() >= 0 and boxes[..., 1].max() <= 64
    np.testing.assert_array_equal(boxes[0], [[92, 0], [128, 0], [128, 27], [92, 27]])


def test_postprocess_below_thresh_gives_nothing():
    pred = _map()
    pred[20:40, 30:90] = 0.25  # under thresh 0.3: nothing in the bitmap
    boxes, scores = postprocess(pred, 64, 128, DetParams())
    assert boxes.shape == (0, 4, 2)
    assert np.issubdtype(boxes.dtype, np.integer)
    assert scores == []
    # a lower thresh lets it through, and box_thresh then decides
    boxes, _ = postprocess(pred, 64, 128, DetParams(thresh=0.2, box_thresh=0.2))
    assert len(boxes) == 1


def test_postprocess_respects_box_thresh_inclusive():
    pred = _map()
    pred[20:40, 30:90] = 0.5  # in the bitmap (> 0.3) but scores 0.5 < box_thresh 0.6
    assert len(postprocess(pred, 64, 128, DetParams())[0]) == 0
    assert len(postprocess(pred, 64, 128, DetParams(box_thresh=0.51))[0]) == 0
    # the test is `box_thresh > score`, so a score equal to box_thresh is kept
    boxes, scores = postprocess(pred, 64, 128, DetParams(box_thresh=0.5))
    assert len(boxes) == 1 and scores == [0.5]


@pytest.mark.parametrize(("height", "kept"), [(1, False), (2, False), (3, False), (4, True)])
def test_postprocess_drops_thin_blobs(height, kept):
    pred = _map()
    pred[20 : 20 + height, 10:100] = 0.9  # a blob `height` rows tall has a short side of height - 1
    boxes, _ = postprocess(pred, 64, 128, DetParams())
    assert len(boxes) == (1 if kept else 0)


def test_postprocess_drops_tiny_dots():
    pred = _map()
    pred[10:12, 10:12] = 1.0
    pred[30:33, 60:63] = 1.0
    boxes, scores = postprocess(pred, 64, 128, DetParams())
    assert len(boxes) == 0 and scores == []


def test_postprocess_several_blobs_and_max_candidates():
    pred = _map()
    pred[5:15, 10:60] = 0.9
    pred[30:45, 40:120] = 0.8
    boxes, scores = postprocess(pred, 64, 128, DetParams())
    assert boxes.shape == (2, 4, 2)
    assert sorted(round(s, 4) for s in scores) == [0.8, 0.9]
    assert len(postprocess(pred, 64, 128, DetParams(max_candidates=1))[0]) == 1


def test_postprocess_unclip_ratio_grows_the_box():
    pred = _map()
    pred[20:40, 30:90] = 0.9
    small, _ = postprocess(pred, 64, 128, DetParams(unclip_ratio=0.5))
    large, _ = postprocess(pred, 64, 128, DetParams(unclip_ratio=2.0))
    width = lambda b: b[0, :, 0].max() - b[0, :, 0].min()  # noqa: E731
    height = lambda b: b[0, :, 1].max() - b[0, :, 1].min()  # noqa: E731
    assert width(large) > width(small) and height(large) > height(small)


# -- sort_boxes -----------------------------------------------------------------------------------


def _box(x: int, y: int, w: int = 20, h: int = 10) -> list[list[int]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def _sort(tls: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[float]]:
    boxes = np.array([_box(x, y) for x, y in tls], dtype=np.int32)
    scores = [float(i) for i in range(len(tls))]
    out, out_scores = sort_boxes(boxes, scores)
    assert out.shape == (len(tls), 4, 2)
    return [tuple(int(v) for v in b[0]) for b in out], out_scores


def test_sort_boxes_y_then_x():
    order, scores = _sort([(50, 100), (10, 0), (30, 50)])
    assert order == [(10, 0), (30, 50), (50, 100)]
    assert scores == [1.0, 2.0, 0.0]  # scores follow their boxes


def test_sort_boxes_two_boxes_on_one_line_are_swapped():
    # PaddleOCR issue #7276: with `range(i, 0, -1)` a 2-box image is never fixed up
    order, scores = _sort([(100, 0), (10, 5)])
    assert order == [(10, 5), (100, 0)]
    assert scores == [1.0, 0.0]


def test_sort_boxes_tolerance_is_strictly_below_10_px():
    assert _sort([(100, 0), (10, 9)])[0] == [(10, 9), (100, 0)]
    assert _sort([(100, 0), (10, 10)])[0] == [(100, 0), (10, 10)]


def test_sort_boxes_whole_line_right_to_left():
    order, _ = _sort([(200, 0), (100, 3), (10, 6)])
    assert order == [(10, 6), (100, 3), (200, 0)]


def test_sort_boxes_different_lines_keep_order():
    order, _ = _sort([(300, 0), (10, 50), (5, 100)])
    assert order == [(300, 0), (10, 50), (5, 100)]


def test_sort_boxes_bubble_is_local_not_line_grouping():
    # dy 8 then 8: a line-grouping sort (RapidOCR) would put all three on one line (x order
    # 5, 10, 50); the bubble rule compares neighbours only, so (5, 16) stays last.
    order, _ = _sort([(50, 0), (10, 8), (5, 16)])
    assert order == [(10, 8), (50, 0), (5, 16)]


def test_sort_boxes_uses_top_left_point_only():
    # box A's top-left is higher but its other corners are lower than B's
    a = [[100, 0], [200, 0], [200, 80], [100, 80]]
    b = [[10, 12], [50, 12], [50, 20], [10, 20]]
    out, _ = sort_boxes(np.array([b, a], np.int32), [0.1, 0.2])
    np.testing.assert_array_equal(out, [a, b])


def test_sort_boxes_empty():
    out, scores = sort_boxes(np.zeros((0, 4, 2), np.int32), [])
    assert out.shape == (0, 4, 2) and scores == []


# -- DetParams ------------------------------------------------------------------------------------


def test_det_params_defaults():
    p = DetParams()
    assert (p.limit_side_len, p.limit_type, p.max_side_limit) == (960, "max", 4000)
    assert (p.thresh, p.box_thresh, p.unclip_ratio, p.max_candidates) == (0.3, 0.6, 1.5, 1000)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit_type", "bogus"),
        ("limit_type", "MAX"),
        ("limit_side_len", 0),
        ("limit_side_len", -960),
        ("limit_side_len", 960.0),
        ("limit_side_len", True),
        ("limit_side_len", "960"),
        ("max_side_limit", 0),
        ("max_candidates", 0),
        ("thresh", 2),
        ("thresh", -0.1),
        ("thresh", "0.3"),
        ("thresh", None),
        ("box_thresh", 1.5),
        ("box_thresh", False),
        ("unclip_ratio", 0),
        ("unclip_ratio", -1.5),
        ("unclip_ratio", "1.5"),
    ],
)
def test_det_params_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        DetParams(**{field: value})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thresh": 0},
        {"thresh": 1},
        {"box_thresh": 0.0},
        {"box_thresh": 1.0},
        {"unclip_ratio": 3},
        {"limit_type": "min"},
        {"limit_type": "resize_long"},
        {"limit_side_len": 1},
    ],
)
def test_det_params_accepts_edge_values(kwargs):
    assert DetParams(**kwargs)


def test_det_params_is_frozen():
    p = DetParams()
    with pytest.raises(AttributeError):
        p.box_thresh = 0.9  # type: ignore[misc]


def test_postprocess_reads_a_strided_view_of_a_padded_map():
    padded = np.zeros((96, 160), np.float32)  # use_hpip pads the model input; the map is cut back
    padded[20:40, 30:90] = 0.9
    padded[50:60, 10:50] = 0.7
    padded[:, 128:] = 0.95  # the padding's scores must not be read
    view = padded[:64, :128]
    got, want = postprocess(view, 128, 256, DetParams()), postprocess(np.ascontiguousarray(view), 128, 256, DetParams())
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1] and len(got[1]) == 2


def test_sigmoid_matches_the_formula_without_warnings(recwarn):
    x = np.array([[-1000.0, -90.0, -3.5, 0.0, 2.25, 90.0, 1000.0]], np.float32)
    got = det.sigmoid(x[:, ::2])  # strided views too
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x[:, ::2].astype(np.float64)))
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)
    assert got[0, 0] == 0.0 and got[0, -1] == 1.0
    assert x[0, 0] == -1000.0  # the input is left as it was
