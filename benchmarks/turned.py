"""Pages turned: end-to-end accuracy on receipts turned 0/90/180/270 degrees, with and without
the orientation stages, beside the upright set, in one run.

    python benchmarks/turned.py ../shared/data/sroie_dev [--limit 100] [--json out.json]

Receipt i is turned by 90 * (i % 4) degrees clockwise (its label quads turned alike), so a quarter
of the set is in each orientation. Each configuration reads the upright set and the turned set;
the score is end-to-end Hmean (ocrflow.eval: a label line counts when a box at IoU > 0.5 carries
its text), also ignoring case. Boxes of a page the orientation stage turned are mapped back to the
input's coordinates (ocrflow.stages.orientation.to_input) before scoring.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ocrflow import create_pipeline
from ocrflow.eval import datasets
from ocrflow.eval.metrics import GtLine
from ocrflow.eval.runner import evaluate

TURNS = (None, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE)

CONFIGS = {  # name -> (create_pipeline arguments, per-call switches)
    "v4": ({"pipeline": "OCR"}, {}),
    "v4 + page orientation": ({"pipeline": "OCR"}, {"use_doc_orientation_classify": True}),
    "v4 + page and line orientation": ({"pipeline": "OCR"}, {"use_doc_orientation_classify": True,
                                                              "use_textline_orientation": True}),
    "OCRv6 (v6 small + page and line orientation)": ({"pipeline": "OCRv6"}, {}),
    "v4 + line orientation": ({"pipeline": "OCR"}, {"use_textline_orientation": True}),
    "v6 small, no stages": ({"pipeline": "OCRv6"}, {"use_doc_orientation_classify": False,
                                                   "use_textline_orientation": False}),
}


def turn_points(points: np.ndarray, code, h: int, w: int) -> np.ndarray:
    """Pixel coordinates of an h x w image after cv2.rotate(code)."""
    x, y = points[:, 0], points[:, 1]
    if code == cv2.ROTATE_90_CLOCKWISE:
        return np.stack([h - 1 - y, x], axis=1)
    if code == cv2.ROTATE_180:
        return np.stack([w - 1 - x, h - 1 - y], axis=1)
    if code == cv2.ROTATE_90_COUNTERCLOCKWISE:
        return np.stack([y, w - 1 - x], axis=1)
    return points


def turned_set(samples: list, folder: Path, turn: int | None = None) -> list:
    out = []
    for i, sample in enumerate(samples):
        code = TURNS[turn // 90 if turn else i % 4]
        image = cv2.imread(str(sample.image))
        h, w = image.shape[:2]
        path = folder / f"{i:04d}_{sample.image.stem}.png"
        cv2.imwrite(str(path), image if code is None else cv2.rotate(image, code))
        lines = [GtLine(turn_points(np.asarray(ln.points, np.float64), code, h, w), ln.text, ln.ignore)
                 for ln in sample.lines]
        out.append(datasets.Sample(path, lines))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="an SROIE-style folder (img/ + box/), e.g. ../shared/data/sroie_dev")
    ap.add_argument("--format", default=None, help="label format (default: detected)")
    ap.add_argument("--limit", type=int, default=100, help="receipts used (default 100)")
    ap.add_argument("--configs", help="comma list of configuration names (default: all)")
    ap.add_argument("--turn", type=int, choices=(90, 180, 270),
                    help="turn every receipt by this many degrees clockwise instead of 0/90/180/270 in turn")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    samples = datasets.load(args.data, args.format)[: args.limit]
    names = args.configs.split(",") if args.configs else list(CONFIGS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        turned = turned_set(samples, Path(tmp), args.turn)
        for name in names:
            build, switches = CONFIGS[name]
            pipe = create_pipeline(build["pipeline"], device="cpu")
            row = {"config": name}
            for label, data in (("upright", samples), ("turned", turned)):
                start = time.perf_counter()
                s = evaluate(pipe, data, "e2e", progress=False, **switches)
                row[label] = {"hmean": s["hmean"], "hmean_ignore_case": s.get("hmean_ignore_case"),
                              "s_per_page": (time.perf_counter() - start) / len(data)}
            rows.append(row)
            print(f"{name:48} upright {row['upright']['hmean']:.3f} ({row['upright']['hmean_ignore_case']:.3f})  "
                  f"turned {row['turned']['hmean']:.3f} ({row['turned']['hmean_ignore_case']:.3f})  "
                  f"s/page {row['upright']['s_per_page']:.2f} / {row['turned']['s_per_page']:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
