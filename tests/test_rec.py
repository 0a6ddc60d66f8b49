"""Tests for ocrflow.rec: per-crop resize/normalise, batching plan, padding, dictionary, CTC decode.

Pure numpy/OpenCV; no model is loaded. Rules from docs/dev/pipeline-facts.md sections 4-5.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ocrflow.rec import MAX_WIDTH, batch_input, batch_plan, bf16_to_f32, char_table, ctc_decode, pad_batch, resize_norm

# -- resize_norm ----------------------------------------------------------------------------------


def _crop(h: int, w: int, value=(0, 0, 0)) -> np.ndarray:
    crop = np.empty((h, w, 3), np.uint8)
    crop[:] = value
    return crop


@pytest.mark.parametrize(
    ("h", "w", "width", "content"),
    [
        (32, 64, 320, 96),  # w/h 2 < 320/48: width 320, content ceil(48*2) = 96
        (7, 10, 320, 69),  # ceil(68.57) = 69
        (48, 48, 320, 48),
        (100, 10, 320, 5),  # tall crop: ceil(4.8) = 5
        (30, 200, 320, 320),  # ratio exactly 320/48: fills the width
        (10, 100, 480, 480),  # wider than the base: width int(48*10)
        (7, 100, 685, 685),  # int(685.71) = 685 and the content is capped to it
    ],
)
def test_resize_norm_width_and_right_padding(h, w, width, content):
    assert width == int(48 * max(320 / 48, w / h))
    assert content == min(math.ceil(48 * w / h), width)
    out = resize_norm(_crop(h, w))  # black -> -1 everywhere in the content
    assert out.shape == (3, 48, width)
    assert out.dtype == np.float32
    assert np.all(out[:, :, :content] == -1.0)
    assert np.all(out[:, :, content:] == 0.0)  # right padding with zeros (mid-grey)


def test_resize_norm_values_per_bgr_channel():
    out = resize_norm(_crop(24, 48, (0, 255, 51)))
    np.testing.assert_allclose(out[0, :, :96], -1.0)
    np.testing.assert_allclose(out[1, :, :96], 1.0)
    np.testing.assert_allclose(out[2, :, :96], 51 / 255 / 0.5 - 1, atol=1e-6)  # -0.6


def test_resize_norm_is_a_bilinear_resize_of_the_crop():
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 256, size=(31, 57, 3), dtype=np.uint8)
    out = resize_norm(crop)
    content = math.ceil(48 * 57 / 31)  # 89
    expected = cv2.resize(crop, (content, 48)).astype(np.float32).transpose(2, 0, 1) / 255 * 2 - 1
    np.testing.assert_allclose(out[:, :, :content], expected, atol=1e-6)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_resize_norm_squashes_very_wide_crops_to_3200():
    assert MAX_WIDTH == 3200
    out = resize_norm(_crop(10, 1000, (255, 255, 255)))  # 4800 wide before the cap
    assert out.shape == (3, 48, 3200)
    assert np.all(out == 1.0)  # squashed, not cut and not padded


def test_resize_norm_just_under_the_cap_is_not_squashed():
    out = resize_norm(_crop(10, 660))  # int(48 * 66) = 3168
    assert out.shape == (3, 48, 3168)


# -- batch_plan / pad_batch -----------------------------------------------------------------------


def test_batch_plan_sorts_by_aspect_ratio_stably_and_chunks():
    # aspect ratios: 3, 1, 2, 1, 5, 2
    crops = [_crop(10, 30), _crop(10, 10), _crop(20, 40), _crop(5, 5), _crop(10, 50), _crop(10, 20)]
    assert batch_plan(crops, 6) == [[1, 3, 2, 5, 0, 4]]  # ties keep input order
    assert batch_plan(crops, 2) == [[1, 3], [2, 5], [0, 4]]
    assert batch_plan(crops, 4) == [[1, 3, 2, 5], [0, 4]]
    assert batch_plan(crops, 1) == [[1], [3], [2], [5], [0], [4]]
    assert batch_plan(crops, 100) == [[1, 3, 2, 5, 0, 4]]


def test_batch_plan_empty():
    assert batch_plan([], 6) == []


def test_pad_batch_pads_right_to_the_widest():
    a = np.full((3, 48, 320), 0.5, np.float32)
    b = np.full((3, 48, 400), -0.25, np.float32)
    out = pad_batch([a, b])
    assert out.shape == (2, 3, 48, 400)
    assert out.dtype == np.float32
    assert np.all(out[0, :, :, :320] == 0.5) and np.all(out[0, :, :, 320:] == 0.0)
    assert np.all(out[1] == -0.25)


def test_pad_batch_single():
    a = np.arange(3 * 48 * 5, dtype=np.float32).reshape(3, 48, 5)
    np.testing.assert_array_equal(pad_batch([a]), a[None])


def test_batch_input_is_pad_batch_of_resize_norm_exactly():
    rng = np.random.default_rng(0)
    shapes = [(30, 45), (12, 700), (48, 48), (7, 900), (40, 12), (10, 1000)]  # 10 x 1000: over the cap
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    for base in (320, 32):
        expected = pad_batch([resize_norm(c, 48, base) for c in crops])
        np.testing.assert_array_equal(batch_input(crops, 48, base), expected)
    # and bit for bit PaddleX's arithmetic: float32(x) / 255, - 0.5, / 0.5, zeros to the right
    x = cv2.resize(crops[0], (72, 48)).astype(np.float32).transpose(2, 0, 1) / 255  # 30 x 45 -> 48 x 72
    x -= 0.5
    x /= 0.5
    out = resize_norm(crops[0], 48, 320)
    assert out.shape == (3, 48, 320)
    np.testing.assert_array_equal(out[:, :, : x.shape[2]], x)
    assert not out[:, :, x.shape[2] :].any()
    out = batch_input(crops[:2], 48, 32, lambda w: w + 64)
    np.testing.assert_array_equal(out, pad_batch([resize_norm(c, 48, 32) for c in crops[:2]], lambda w: w + 64))


# -- char_table -----------------------------------------------------------------------------------


def test_char_table_plain_dictionary_gets_blank_first_and_space_last():
    assert char_table(["a", "b", "c"], 5) == ["blank", "a", "b", "c", " "]


def test_char_table_without_space():
    assert char_table(["a", "b", "c"], 4) == ["blank", "a", "b", "c"]


def test_char_table_used_as_is_when_it_matches():
    table = ["blank", "a", "b", " "]
    out = char_table(table, 4)
    assert out == table
    assert out is not table  # a copy: the caller's list is not shared


@pytest.mark.parametrize("num_classes", [2, 6, 100])
def test_char_table_mismatch_raises(num_classes):
    with pytest.raises(ValueError, match="3 characters.*" + str(num_classes)):
        char_table(["a", "b", "c"], num_classes)


# -- ctc_decode -----------------------------------------------------------------------------------

TABLE = ["blank", "a", "b", " "]


def _probs(seq: list[int], best: list[float], classes: int = len(TABLE)) -> np.ndarray:
    """1 x T x C: step t has its max `best[t]` at class seq[t], the rest spread evenly."""
    out = np.zeros((1, len(seq), classes), np.float32)
    for t, (k, p) in enumerate(zip(seq, best)):
        out[0, t, :] = (1 - p) / (classes - 1)
        out[0, t, k] = p
    return out


def test_ctc_collapses_repeats_and_drops_blanks():
    probs = _probs([1, 1, 0, 1, 2, 2, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    [(text, score)] = ctc_decode(probs, TABLE)
    assert text == "aab"
    # kept steps: t0 (a), t3 (a), t4 (b); the repeats t1, t5 and the blanks are not averaged
    assert score == pytest.approx((0.9 + 0.6 + 0.5) / 3, abs=1e-6)


def test_ctc_double_letter_needs_a_blank_between():
    assert ctc_decode(_probs([1, 1, 1], [0.9] * 3), TABLE)[0][0] == "a"
    assert ctc_decode(_probs([1, 0, 1], [0.9] * 3), TABLE)[0][0] == "aa"
    assert ctc_decode(_probs([1, 2, 1], [0.9] * 3), TABLE)[0][0] == "aba"


def test_ctc_space_is_the_last_class():
    assert ctc_decode(_probs([1, 3, 2], [0.9] * 3), TABLE)[0][0] == "a b"


def test_ctc_all_blank_is_empty_with_zero_score():
    [(text, score)] = ctc_decode(_probs([0, 0, 0, 0], [0.99] * 4), TABLE)
    assert text == ""
    assert score == 0.0
    assert isinstance(score, float)


def test_ctc_batch_rows_are_independent():
    probs = np.concatenate([_probs([2, 0, 2], [0.8, 0.9, 0.6]), _probs([0, 0, 0], [0.5] * 3)])
    out = ctc_decode(probs, TABLE)
    assert out[0][0] == "bb" and out[0][1] == pytest.approx(0.7, abs=1e-6)
    assert out[1] == ("", 0.0)
    assert all(isinstance(s, float) for _, s in out)


def test_ctc_rows_do_not_merge_at_their_boundary():
    # row 0 ends with "a", row 1 starts with "a"; an all-blank row between two others
    probs = np.concatenate([_probs([2, 1], [0.9] * 2), _probs([0, 0], [0.9] * 2), _probs([1, 1], [0.9] * 2),
                            _probs([1, 2], [0.9] * 2)])
    assert [t for t, _ in ctc_decode(probs, TABLE)] == ["ba", "", "a", "ab"]


def test_ctc_score_is_the_float32_mean_of_the_kept_maxima():
    """As PaddleX: np.mean over the kept float32 maxima, to the last bit."""
    rng = np.random.default_rng(0)
    probs = rng.random((5, 40, 7), dtype=np.float32)
    probs[:, ::3, 0] = 2  # some blanks
    for (_, score), row in zip(ctc_decode(probs, ["blank", *"abcdef"]), probs):
        idx = row.argmax(axis=1)
        keep = (idx != 0) & np.r_[True, idx[1:] != idx[:-1]]
        assert score == float(np.mean(row.max(axis=1)[keep]))


def _to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns as uint16 (truncated, as a test needs no rounding)."""
    return (np.ascontiguousarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def test_bf16_to_f32_is_exact():
    bits = np.array([0x3F80, 0x3F00, 0x0000, 0x3E80, 0x3F7F], np.uint16)
    assert bf16_to_f32(bits).tolist() == [1.0, 0.5, 0.0, 0.25, 0.99609375]
    x = np.random.default_rng(1).random(1000, dtype=np.float32)
    assert np.array_equal(bf16_to_f32(_to_bf16(x)), (x.view(np.uint32) & 0xFFFF0000).view(np.float32))


def test_ctc_on_bf16_patterns_reads_as_on_the_numbers_they_stand_for():
    """use_hpip's OpenVINO output: the best class is found on the uint16 patterns themselves."""
    rng = np.random.default_rng(3)
    probs = rng.random((6, 50, 40), dtype=np.float32) ** 4  # non-negative, spread over many decades
    winner = rng.integers(0, 40, (6, 50))
    winner[:, ::4] = 0  # some blanks
    np.put_along_axis(probs, winner[..., None], 2 + rng.random((6, 50, 1), dtype=np.float32), axis=2)
    probs /= probs.sum(axis=2, keepdims=True)
    bits = _to_bf16(probs)
    table = ["blank", *(chr(ord("a") + i) for i in range(39))]
    assert ctc_decode(bits, table) == ctc_decode(bf16_to_f32(bits), table)
    assert [t for t, _ in ctc_decode(bits, table)] == [t for t, _ in ctc_decode(probs, table)]
