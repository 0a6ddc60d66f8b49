"""Accuracy metrics, defined exactly as PaddleOCR's (docs/dev/pipeline-facts.md section 9).

Detection: ICDAR-style IoU matching (greedy in GT then detection order, IoU > 0.5, don't-care
regions), micro-averaged precision / recall / Hmean. Recognition: exact-match accuracy and
1 - normalised edit distance, spaces ignored. End-to-end: a ground-truth line counts as read when a
detected box matched to it at IoU > 0.5 carries the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rapidfuzz.distance import Levenshtein
from shapely.geometry import Polygon

IOU = 0.5
DONT_CARE_OVERLAP = 0.5


@dataclass
class GtLine:
    points: np.ndarray  # K x 2
    text: str = ""
    ignore: bool = False  # don't care (ICDAR '###')


def _polygon(points) -> Polygon | None:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return None
    poly = Polygon(pts)
    return poly if poly.is_valid and poly.is_simple and poly.area > 0 else None


def _iou(a: Polygon, b: Polygon) -> float:
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


@dataclass
class ImageMatch:
    """One image's matching: counts and the matched (gt index, det index) pairs."""

    gt_care: int
    det_care: int
    pairs: list[tuple[int, int]] = field(default_factory=list)
    gt_valid: list[int] = field(default_factory=list)  # indices of usable, cared-for GT lines
    det_valid: list[int] = field(default_factory=list)


def match_image(gts: list[GtLine], dets: list) -> ImageMatch:
    """PaddleOCR's DetectionIoUEvaluator for one image."""
    gt_polys = [(i, _polygon(g.points), g.ignore) for i, g in enumerate(gts)]
    gt_polys = [(i, p, ign) for i, p, ign in gt_polys if p is not None]  # invalid shapes are skipped
    det_polys = [(j, _polygon(d)) for j, d in enumerate(dets)]
    det_polys = [(j, p) for j, p in det_polys if p is not None]
    dont_care = [p for _, p, ign in gt_polys if ign]
    det_dont_care = set()
    for j, p in det_polys:
        if any(p.intersection(g).area / p.area > DONT_CARE_OVERLAP for g in dont_care):
            det_dont_care.add(j)
    gt_matched, det_matched = set(), set()
    pairs = []
    for i, gp, ign in gt_polys:
        if ign:
            continue
        for j, dp in det_polys:
            if j in det_matched or j in det_dont_care or i in gt_matched:
                continue
            if _iou(gp, dp) > IOU:
                gt_matched.add(i)
                det_matched.add(j)
                pairs.append((i, j))
    gt_valid = [i for i, _, ign in gt_polys if not ign]
    det_valid = [j for j, _ in det_polys if j not in det_dont_care]
    return ImageMatch(len(gt_valid), len(det_valid), pairs, gt_valid, det_valid)


def hmean(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def normalize_text(text: str, ignore_space: bool = True, ignore_case: bool = False) -> str:
    if ignore_space:
        text = text.replace(" ", "")
    return text.lower() if ignore_case else text


@dataclass
class DetScore:
    """Micro-averaged detection metrics over a dataset."""

    matched: int = 0
    gt_care: int = 0
    det_care: int = 0

    def add(self, m: ImageMatch) -> None:
        self.matched += len(m.pairs)
        self.gt_care += m.gt_care
        self.det_care += m.det_care

    def summary(self) -> dict:
        recall = self.matched / self.gt_care if self.gt_care else 0.0
        precision = self.matched / self.det_care if self.det_care else 0.0
        return {"precision": precision, "recall": recall, "hmean": hmean(precision, recall),
                "gt_lines": self.gt_care, "detected": self.det_care, "matched": self.matched}


@dataclass
class RecScore:
    """PaddleOCR's RecMetric: accuracy and 1 - normalised edit distance, spaces ignored."""

    total: int = 0
    correct: int = 0
    correct_nocase: int = 0
    edit: float = 0.0

    def add(self, pred: str, label: str) -> bool:
        p, t = normalize_text(pred), normalize_text(label)
        self.total += 1
        self.correct += p == t
        self.correct_nocase += p.lower() == t.lower()
        self.edit += Levenshtein.normalized_distance(p, t)
        return p == t

    def summary(self) -> dict:
        n = self.total + 1e-5
        return {"accuracy": self.correct / n, "accuracy_ignore_case": self.correct_nocase / n,
                "norm_edit_dis": 1 - self.edit / n, "samples": self.total}


@dataclass
class E2EScore:
    """End-to-end line accuracy: matched at IoU > 0.5 and the same text (spaces ignored)."""

    gt_care: int = 0
    det_care: int = 0
    correct: int = 0
    correct_nocase: int = 0

    def add(self, gts: list[GtLine], det_polys, det_texts: list[str]) -> list[tuple[int, int, bool]]:
        m = match_image(gts, det_polys)
        self.gt_care += m.gt_care
        self.det_care += m.det_care
        outcome = []
        for i, j in m.pairs:
            label = normalize_text(gts[i].text)
            pred = normalize_text(det_texts[j])
            self.correct += pred == label
            self.correct_nocase += pred.lower() == label.lower()
            outcome.append((i, j, pred == label))
        return outcome

    def summary(self) -> dict:
        out = {"gt_lines": self.gt_care, "detected": self.det_care}
        for key, correct in (("", self.correct), ("_ignore_case", self.correct_nocase)):
            recall = correct / self.gt_care if self.gt_care else 0.0
            precision = correct / self.det_care if self.det_care else 0.0
            out[f"accuracy{key}"] = recall
            out[f"precision{key}"] = precision
            out[f"hmean{key}"] = hmean(precision, recall)
        return out
