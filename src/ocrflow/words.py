"""Word boxes (`return_word_box`) from the CTC alignment of a line's characters.

Two sets come out of one alignment: PaddleX 3.x's `text_word` / `text_word_region` to the pixel (its
get_word_info and cal_ocr_word_box: the detection box's x range cut at the columns, symbols kept as
words; the `paddlex_*` functions below), and the words the exports place (below, first), whose
boxes follow the crop's geometry.

Greedy CTC keeps one output column per character; column c of T covers input x in [c, c+1) x W/T,
where W is the batch's padded width, of which the line's resized crop takes the first `fraction`.
Words are grouped as PaddleOCR 3.x groups them (`get_word_info` / `cal_ocr_word_box`): runs of
letters and digits (with '-' and a decimal point inside them), each CJK character on its own, other
characters split words and are dropped. A word spans its first to its last column; a CJK character
is centred on its column with the line's mean CJK character pitch as its width. The spans are in
the crop's pixels and are mapped back through the crop's own geometry (its minAreaRect, the warp,
the 90 degree turn of tall lines), so the word boxes of a rotated line are rotated too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

_ALNUM = re.compile(r"[A-Za-z0-9]")
_DIGIT = re.compile(r"[0-9]")


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def split_words(text: str, cols: list[int]) -> list[tuple[str, list[int], str]]:
    """(word, its characters' columns, 'cn' | 'en&num') for each word of the line, in order."""
    words: list[tuple[str, list[int], str]] = []
    chars: list[str] = []
    char_cols: list[int] = []
    state = None
    for i, char in enumerate(text):
        if _is_cjk(char):
            kind = "cn"
        elif _ALNUM.search(char):
            kind = "en&num"
        else:
            kind = "splitter"
        if state == "en&num" and (char == "-" or (char == "." and i + 1 < len(text) and _DIGIT.search(text[i + 1]))):
            kind = "en&num"  # 'state-of-the-art', '3.14'
        if state is None:
            state = kind
        if kind != state:
            if chars:
                words.append(("".join(chars), char_cols, state))
                chars, char_cols = [], []
            state = kind
        if state != "splitter":
            chars.append(char)
            char_cols.append(cols[i])
    if chars:
        words.append(("".join(chars), char_cols, state))
    return words


def word_spans(text: str, cols: list[int], columns: float, width: float) -> list[tuple[str, float, float]]:
    """(word, x0, x1) in the crop's pixels. `columns`: the output columns that cover the crop
    (T x the crop's share of the padded input); `width`: the crop's width in pixels."""
    if not text or columns <= 0:
        return []
    if len(cols) != len(text):  # a dictionary entry of several characters: spread them evenly
        cols = [int(i * columns / len(text)) for i in range(len(text))]
    cell = width / columns
    spans: list[tuple[str, float, float]] = []
    cjk: list[tuple[str, int]] = []
    pitches = []
    for word, word_cols, kind in split_words(text, cols):
        if kind == "cn":
            if len(word_cols) > 1:
                pitches.append((word_cols[-1] - word_cols[0] + 1) * cell / (len(word_cols) - 1))
            cjk.extend(zip(word, word_cols))
        else:
            spans.append((word, word_cols[0] * cell, (word_cols[-1] + 1) * cell))
    if cjk:
        pitch = float(np.mean(pitches)) if pitches else width / len(text)
        for char, col in cjk:
            centre = (col + 0.5) * cell
            spans.append((char, max(centre - pitch / 2, 0.0), min(centre + pitch / 2, width)))
    spans.sort(key=lambda s: s[1])
    return spans


@dataclass(frozen=True)
class CropFrame:
    """Where a line's crop came from: its quad in the image (TL, TR, BR, BL), the crop's size
    before the turn, and whether the crop was turned 90 degrees counter-clockwise (tall lines)."""

    quad: np.ndarray
    width: int
    height: int
    turned: bool

    @property
    def read_width(self) -> int:
        """The width of the crop as recognition reads it (after the turn)."""
        return self.height if self.turned else self.width

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Points in the crop as recognition reads it -> points in the image."""
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if self.turned:  # np.rot90: a point (x, y) of the turned crop is (W - y, x) before the turn
            pts = np.stack([self.width - pts[:, 1], pts[:, 0]], axis=1)
        dst = np.array([[0, 0], [self.width, 0], [self.width, self.height], [0, self.height]], np.float32)
        back = cv2.getPerspectiveTransform(dst, self.quad.astype(np.float32))
        return cv2.perspectiveTransform(pts[None], back)[0]

    def word_quads(self, spans: list[tuple[str, float, float]]) -> list[np.ndarray]:
        """Each span's full-height box in the image (4 x 2, TL TR BR BL as read)."""
        h = self.width if self.turned else self.height
        return [self.to_image(np.array([[x0, 0], [x1, 0], [x1, h], [x0, h]])) for _, x0, x1 in spans]


# -- PaddleX 3.x's text_word / text_word_region, to the pixel ------------------------------------------
def paddlex_word_info(text: str, cols: list[int]) -> tuple[list[list[str]], list[list[int]], list[str]]:
    """PaddleX's get_word_info: runs of CJK ('cn'), of letters and digits ('en&num', with '-' and a
    decimal point inside), and of anything else ('symbol', kept as words of their own)."""
    words: list[list[str]] = []
    word_cols: list[list[int]] = []
    states: list[str] = []
    chars: list[str] = []
    char_cols: list[int] = []
    state = None
    for i, char in enumerate(text):
        kind = "cn" if _is_cjk(char) else "en&num" if _ALNUM.search(char) else "symbol"
        if state == "en&num" and (char == "-" or (char == "." and i + 1 < len(text) and _DIGIT.search(text[i + 1]))):
            kind = "en&num"
        if state is None:
            state = kind
        if kind != state:
            if chars:
                words.append(chars)
                word_cols.append(char_cols)
                states.append(state)
                chars, char_cols = [], []
            state = kind
        chars.append(char)
        char_cols.append(cols[i])
    if chars:
        words.append(chars)
        word_cols.append(char_cols)
        states.append(state)
    return words, word_cols, states


def paddlex_word_boxes(text: str, poly: np.ndarray, columns: float, cols: list[int]) -> tuple[list[str], list]:
    """PaddleX's cal_ocr_word_box: (text_word, text_word_region) of one line, from the detection box's
    x range (y range for a vertical line) cut at the words' CTC columns, in the same integer steps."""
    if not text or columns <= 0:
        return [], []
    if len(cols) != len(text):
        cols = [int(i * columns / len(text)) for i in range(len(text))]
    words, word_cols, states = paddlex_word_info(text, cols)
    box = np.asarray(poly).reshape(4, 2).tolist()
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    vertical = (max(ys) - min(ys)) / max(max(xs) - min(xs), 1e-9) > 1.5
    x_start, x_end, y_start, y_end = box[0][0], box[1][0], box[0][1], box[2][1]
    if vertical:
        start, size = y_start, y_end - y_start

        def make(a, b):
            return [[x_start, a], [x_start, b], [x_end, b], [x_end, a]]
    else:
        start, size = x_start, x_end - x_start

        def make(a, b):
            return [[a, y_start], [b, y_start], [b, y_end], [a, y_end]]
    cell = size / columns
    contents: list[str] = []
    boxes: list = []
    cjk_sizes: list[float] = []
    cjk_cols: list[int] = []
    for word, wcols, state in zip(words, word_cols, states):
        if state == "cn":
            if len(wcols) != 1:
                cjk_sizes.append((wcols[-1] - wcols[0] + 1) * cell / (len(wcols) - 1))
            cjk_cols += wcols
            contents += word
        else:
            boxes.append(make(start + int(wcols[0] * cell), start + int((wcols[-1] + 1) * cell)))
            contents.append("".join(word))
    if cjk_cols:
        avg = float(np.mean(cjk_sizes)) if cjk_sizes else size / len(text)
        for col in cjk_cols:
            centre = (col + 0.5) * cell
            boxes.append(make(max(int(centre - avg / 2), 0) + start, min(int(centre + avg / 2), size) + start))
    return contents, _sort_boxes(boxes, 12)


def _sort_boxes(boxes: list, y_thresh: float) -> list:
    """PaddleX's sort_boxes: rows of centres less than y_thresh apart, each row left to right."""
    items = sorted(((b, np.mean(np.asarray(b, np.float64), axis=0)) for b in boxes), key=lambda it: it[1][1])
    rows: list[list] = []
    last = None
    for b, centre in items:
        if rows and abs(centre[1] - last) < y_thresh:
            rows[-1].append((b, centre))
        else:
            rows.append([(b, centre)])
        last = centre[1]
    return [b for row in rows for b, _ in sorted(row, key=lambda it: it[1][0])]
