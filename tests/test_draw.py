"""Tests for ocrflow.draw: the side-by-side OCR visualisation."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from ocrflow import draw
from ocrflow.draw import draw_ocr, find_font

H, W = 120, 240
BOX = [[20, 30], [180, 30], [180, 70], [20, 70]]


@pytest.fixture(autouse=True)
def _no_env_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(draw.FONT_ENV, raising=False)


@pytest.fixture
def image() -> np.ndarray:
    return np.full((H, W, 3), 128, dtype=np.uint8)


@pytest.fixture
def cjk_font() -> str:
    path = find_font()
    if path is None or not draw._covers_cjk(path):
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    return path


def _inside(box: list[list[int]], pad: int = 2) -> tuple[slice, slice]:
    """Row/col slices strictly inside an axis-aligned box (avoids the outline)."""
    (x0, y0), (x1, y1) = box[0], box[2]
    return slice(y0 + pad, y1 - pad), slice(x0 + pad, x1 - pad)


def _box_mask(box: list[list[int]], pad: int = 2) -> np.ndarray:
    """True outside the box grown by pad (where nothing may be drawn)."""
    (x0, y0), (x1, y1) = box[0], box[2]
    mask = np.ones((H, W), dtype=bool)
    mask[max(0, y0 - pad) : y1 + pad + 1, max(0, x0 - pad) : x1 + pad + 1] = False
    return mask


def test_shape_blend_and_white_background(image: np.ndarray) -> None:
    out = draw_ocr(image, np.array([BOX]), ["hello"])
    assert out.shape == (H, 2 * W, 3) and out.dtype == np.uint8
    left, right = out[:, :W], out[:, W:]
    rows, cols = _inside(BOX)
    outside = _box_mask(BOX)
    assert not np.array_equal(left[rows, cols], image[rows, cols])  # box blended
    assert np.array_equal(left[outside], image[outside])  # rest untouched
    assert (right[outside] == 255).all()
    assert (right[rows, cols] < 128).any()  # some text drawn


def test_outline_uses_deterministic_colour(image: np.ndarray) -> None:
    rng = random.Random(0)
    rgb = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    out = draw_ocr(image, [BOX], [""])
    right = out[:, W:]
    # Empty text: only the outline, in the first colour (BGR in the output).
    assert tuple(right[50, 20]) == rgb[::-1]
    rows, cols = _inside(BOX)
    assert (right[rows, cols] == 255).all()


def test_chinese_renders_real_glyphs(image: np.ndarray, cjk_font: str) -> None:
    rows, cols = _inside(BOX)
    a = draw_ocr(image, [BOX], ["中"], font_path=cjk_font)[:, W:]
    b = draw_ocr(image, [BOX], ["国"], font_path=cjk_font)[:, W:]
    assert (a[rows, cols] < 100).sum() > 20
    assert (b[rows, cols] < 100).sum() > 20
    # A font without CJK glyphs draws the same .notdef box for both.
    assert not np.array_equal(a, b)


def test_no_boxes(image: np.ndarray) -> None:
    for polys in (np.zeros((0, 4, 2), dtype=np.int32), []):
        out = draw_ocr(image, polys, [])
        assert out.shape == (H, 2 * W, 3)
        assert np.array_equal(out[:, :W], image)
        assert (out[:, W:] == 255).all()


def test_degenerate_boxes_do_not_crash(image: np.ndarray) -> None:
    polys = [
        [[10, 10], [10, 10], [10, 40], [10, 40]],  # zero width
        [[0, 0], [50, 0], [100, 0], [-20, 0]],  # collinear, zero area
        [[5, 5], [5, 5], [5, 5], [5, 5]],  # a point
        BOX,
    ]
    out = draw_ocr(image, polys, ["a", "b", "c", "ok"])
    assert out.shape == (H, 2 * W, 3)
    rows, cols = _inside(BOX)
    assert (out[:, W:][rows, cols] < 128).any()


def test_vertical_box_stacks_characters(image: np.ndarray) -> None:
    box = [[200, 5], [230, 5], [230, 115], [200, 115]]  # h > 2w and h > 30
    out = draw_ocr(image, [box], ["ABCD"])[:, W:]
    rows, cols = _inside(box)
    dark_rows = np.flatnonzero((out[rows, cols] < 128).any(axis=1))
    assert dark_rows.size
    # Characters spread top to bottom, not one squeezed line at the top.
    assert dark_rows[-1] - dark_rows[0] > (box[2][1] - box[0][1]) * 0.6


def test_mismatched_lengths_raise(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        draw_ocr(image, [BOX], ["a", "b"])


def test_find_font_env_and_explicit(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    env_font, arg_font = tmp_path / "env.ttf", tmp_path / "arg.ttf"
    env_font.write_bytes(b"x")
    arg_font.write_bytes(b"x")
    monkeypatch.setenv(draw.FONT_ENV, str(env_font))
    assert find_font() == str(env_font)
    assert find_font(str(arg_font)) == str(arg_font)  # explicit beats env
    missing = str(tmp_path / "nope.ttf")
    with pytest.raises(FileNotFoundError, match="nope.ttf"):
        find_font(missing)
    monkeypatch.setenv(draw.FONT_ENV, missing)
    with pytest.raises(FileNotFoundError, match=draw.FONT_ENV):
        find_font()


def test_fallback_without_cjk_font_warns_once(
    image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draw, "find_font", lambda path=None: None)
    draw._warn_no_cjk_font.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = draw_ocr(image, [BOX], ["hello"])
        draw_ocr(image, [BOX], ["again"])
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(msgs) == 1 and "fonts-wqy-microhei" in msgs[0]
    rows, cols = _inside(BOX)
    assert (out[:, W:][rows, cols] < 128).any()
