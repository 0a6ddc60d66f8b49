"""`ocrflow check_dataset`: validate a labelled dataset before training or evaluation.

Reports missing or unreadable images, degenerate polygons, and characters the recognition
dictionary cannot produce; prints statistics and draws a few labelled samples.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OcrflowError
from .datasets import FORMATS, Sample, load
from .metrics import _polygon
from .runner import load_image


def dictionary_chars(rec_model: str) -> set[str]:
    """The characters a recognition model can output (its dictionary, space included)."""
    from ..engine import load_model
    from ..models import resolve

    files = resolve(rec_model, "rec")
    chars = files.chars
    if chars is None:
        chars = tuple(load_model(files.onnx).metadata.get("character", "").splitlines())
    return set(chars) | {" "}


def check(samples: list[Sample], chars: set[str] | None) -> dict:
    problems: list[dict] = []
    missing_chars: collections.Counter = collections.Counter()
    lengths, sizes, lines, dont_care = [], [], 0, 0
    for sample in samples:
        if not sample.image.is_file():
            problems.append({"image": str(sample.image), "problem": "image file missing"})
            continue
        try:
            image = load_image(sample.image)
        except InputError:
            problems.append({"image": str(sample.image), "problem": "image cannot be decoded"})
            continue
        sizes.append(image.shape[:2])
        is_crop = len(sample.lines) == 1 and not sample.lines[0].points.any()
        for n, line in enumerate(sample.lines):
            lines += 1
            if line.ignore:
                dont_care += 1
                continue
            if not is_crop:
                pts = line.points.reshape(-1, 2)
                if _polygon(pts) is None:
                    problems.append({"image": str(sample.image), "line": n, "problem": "degenerate polygon",
                                     "points": pts.tolist()})
                elif (pts < -1).any() or (pts > [image.shape[1] + 1, image.shape[0] + 1]).any():
                    problems.append({"image": str(sample.image), "line": n, "problem": "polygon outside the image"})
            if not line.text:
                problems.append({"image": str(sample.image), "line": n, "problem": "empty text"})
            lengths.append(len(line.text))
            if chars is not None:
                unknown = [c for c in line.text if c not in chars]
                missing_chars.update(unknown)
    stats = {
        "images": len(samples),
        "readable_images": len(sizes),
        "lines": lines,
        "dont_care_lines": dont_care,
        "text_length_mean": float(np.mean(lengths)) if lengths else 0.0,
        "text_length_max": max(lengths, default=0),
        "image_height_median": float(np.median([h for h, _ in sizes])) if sizes else 0.0,
        "image_width_median": float(np.median([w for _, w in sizes])) if sizes else 0.0,
        "chars_missing_from_dictionary": dict(missing_chars.most_common(50)),
    }
    return {"ok": not problems and not missing_chars, "stats": stats, "problems": problems}


def draw_samples(samples: list[Sample], save_path: Path, count: int) -> list[Path]:
    from ..draw import draw_ocr

    save_path.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in [s for s in samples if s.image.is_file()][:count]:
        quads = [ln for ln in sample.lines if ln.points.reshape(-1, 2).shape[0] == 4]
        if not quads:
            continue
        try:
            image = load_image(sample.image)
        except InputError:
            continue
        picture = draw_ocr(image, np.array([q.points.reshape(4, 2) for q in quads]), [q.text for q in quads])
        target = save_path / f"{sample.image.stem}_labels.jpg"
        cv2.imwrite(str(target), picture)
        written.append(target)
    return written


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ocrflow check_dataset", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a label file (PaddleOCR format) or a dataset folder")
    ap.add_argument("--format", choices=FORMATS, help="label format (default: detected)")
    ap.add_argument("--root", help="folder the image paths of a label file are relative to")
    ap.add_argument("--rec_model", default="PP-OCRv4_mobile_rec",
                    help="check the characters against this model's dictionary")
    ap.add_argument("--save_path", help="draw a few labelled samples into this folder")
    ap.add_argument("--samples", type=int, default=4, help="how many samples to draw (default 4)")
    ap.add_argument("--json", metavar="FILE", help="write the report as JSON")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        samples = load(args.data, args.format, args.root)
        report = check(samples, dictionary_chars(args.rec_model) if args.rec_model else None)
        if args.save_path:
            report["drawn"] = [str(p) for p in draw_samples(samples, Path(args.save_path), args.samples)]
    except OcrflowError as exc:
        print(f"ocrflow check_dataset: error: {exc}", file=sys.stderr)
        return 1
    for key, value in report["stats"].items():
        print(f"{key:30} {value}")
    for problem in report["problems"][:50]:
        print("problem:", json.dumps(problem, ensure_ascii=False))
    if len(report["problems"]) > 50:
        print(f"... and {len(report['problems']) - 50} more problems")
    print("dataset OK" if report["ok"] else "dataset has problems")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if report["ok"] else 1
