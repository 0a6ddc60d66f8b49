"""Word boxes (`return_word_box`) from the CTC alignment of a line's characters.

Two sets come out of one alignment: PaddleX 3.x's `text_word` / `text_word_region` to the pixel (its
get_word_info and cal_ocr_word_box: the detection box's x range cut at the columns, symbols kept as
words; the `paddlex_*` functions below), and the words the exports place (below, first), whose
boxes follow the crop's geometry.

Greedy CTC keeps one output column per character; column c of T covers input x in [c, c+1) x W/T,
where W is the batch's padded width, of which the line's resized crop takes the first `fraction`.
The exports' words are the runs between spaces (any script, punctuation included), each CJK
character or kana on its own. A word spans its first to its last column; a CJK character is centred
on its column with the line's mean CJK pitch as its width (PaddleX's rule). The spans are in the
crop's pixels and are mapped back through the crop's own geometry (its minAreaRect, the warp, the
90 degree turn of tall lines), so the word boxes of a rotated line are rotated too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

_ALNUM = re.compile(r"[A-Za-z0-9]")
_DIGIT = re.compile(r"[0-9]")


def _is_cjk(char: str) -> bool:
    """PaddleX's test for Chinese characters (its word grouping keeps to it)."""
    return "\u4e00" <= char <= "\u9fff"


def _stands_alone(char: str) -> bool:
    """Characters written without spaces between words, each one a word of its own in the exports:
    CJK ideographs (with extensions and compatibility forms), kana."""
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF)


def split_words(text: str, cols: list[int]) -> list[tuple[str, list[int], str]]:
    """The words the exports place: (word, its characters' columns, 'cn' | 'word'). A word is a run
    of characters between spaces, in any script and with its punctuation; each CJK ideograph or kana
    is a word of its own ('cn'). Nothing but spaces is left out."""
    words: list[tuple[str, list[int], str]] = []
    chars: list[str] = []
    char_cols: list[int] = []

    def close() -> None:
        if chars:
            words.append(("".join(chars), list(char_cols), "word"))
            chars.clear()
            char_cols.clear()

    for char, col in zip(text, cols):
        if char.isspace():
            close()
        elif _stands_alone(char):
            close()
            words.append((char, [col], "cn"))
        else:
            chars.append(char)
            char_cols.append(col)
    close()
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
    pitches, run = [], []  # CJK pitch: from runs of adjacent CJK characters, as PaddleX measures it
    for word, word_cols, kind in split_words(text, cols) + [("", [], "end")]:
        if kind == "cn":
            run.append(word_cols[0])
            cjk.append((word, word_cols[0]))
            continue
        if len(run) > 1:
            pitches.append((run[-1] - run[0] + 1) * cell / (len(run) - 1))
        run = []
        if kind == "word":
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
