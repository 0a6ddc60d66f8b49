"""Run a pipeline over a labelled dataset and score it."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..crop import crop_quad
from ..errors import InputError
from ..inputs import Source, read
from ..stages.orientation import to_input
from .datasets import Sample
from .metrics import DetScore, E2EScore, RecScore, match_image

TASKS = ("det", "rec", "e2e")


def load_image(path) -> np.ndarray:
    """One labelled image, read as the pipeline reads its inputs (by content, BGR)."""
    pages = list(read(Source("path", path, str(path))))
    if len(pages) != 1:
        raise InputError(f"{path}: expected one image, got {len(pages)} pages")
    return pages[0].image


def _order_quad(points: np.ndarray) -> np.ndarray:
    """TL, TR, BR, BL order for a 4-point label (labels come in either winding)."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def evaluate(pipeline, samples: list[Sample], task: str, errors: bool = False, progress: bool = True,
             **overrides) -> dict:
    """Score `task` ('det', 'rec' or 'e2e') of the pipeline on the samples; errors=True lists misses."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    params, batch_size = pipeline.call_settings(overrides)
    det, rec, e2e = DetScore(), RecScore(), E2EScore()
    report: list[dict] = []
    bar = tqdm(samples, desc=f"eval {task}", unit="img", disable=None if progress else True)
    if task == "e2e":  # through ocr_many, so use_hpip pools recognition across images as predict() does
        # the call's stage switches (page / line orientation), where the pipeline has them
        extra = {"conf": pipeline.call_config(overrides)} if hasattr(pipeline, "call_config") else {}
        images = ((s, load_image(s.image)) for s in bar)
        for sample, res in pipeline.ocr_many(images, params, batch_size, **extra):
            polys = res["dt_polys"]
            angle = res.get("doc_preprocessor_res", {}).get("angle", -1)
            if angle > 0:  # boxes on the page turned upright -> the labels' (input image's) coordinates
                h, w = res["_page"].shape[:2]
                polys = to_input(polys, angle, (h, w) if angle == 180 else (w, h))
            outcome = e2e.add(sample.lines, polys, res["rec_text"])
            if errors:
                wrong = [{"label": sample.lines[i].text, "pred": res["rec_text"][j]} for i, j, ok in outcome if not ok]
                matched = {i for i, _, _ in outcome}
                missed = [ln.text for i, ln in enumerate(sample.lines) if not ln.ignore and i not in matched]
                if wrong or missed:
                    report.append({"image": str(sample.image), "misread": wrong, "missed": missed})
    else:
        for sample in bar:
            image = load_image(sample.image)
            if task == "det":
                boxes, _ = pipeline.detect(image, params)
                m = match_image(sample.lines, boxes)
                det.add(m)
                if errors and (len(m.pairs) < m.gt_care or len(m.pairs) < m.det_care):
                    matched = {i for i, _ in m.pairs}
                    report.append({"image": str(sample.image), "missed": [sample.lines[i].text for i in m.gt_valid
                                                                          if i not in matched],
                                   "false_alarms": len(m.det_valid) - len(m.pairs)})
            else:
                lines = [ln for ln in sample.lines if not ln.ignore]
                if sample.is_crop:
                    crops = [image]
                else:
                    crops = [crop_quad(image, _order_quad(ln.points)) for ln in lines if len(ln.points) == 4]
                    lines = [ln for ln in lines if len(ln.points) == 4]
                for ln, (text, _) in zip(lines, pipeline.recognize(crops, batch_size)):
                    if not rec.add(text, ln.text) and errors:
                        report.append({"image": str(sample.image), "label": ln.text, "pred": text})
    summary = {"det": det, "rec": rec, "e2e": e2e}[task].summary()
    summary = {"task": task, "images": len(samples), **summary}
    if errors:
        summary["errors"] = report
    return summary
