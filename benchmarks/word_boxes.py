"""Word boxes (return_word_box) against FUNSD's labelled words.

    python benchmarks/word_boxes.py [--data ../shared/data/funsd_test] [--use_hpip]

For every labelled word of every form (FUNSD annotations: form entities -> words, each a box and a
text), is there a predicted word whose axis-aligned box overlaps it at IoU > 0.5? Reported: the
share of labelled words matched by a box alone, by a box with the same text, and by a box with the
same text ignoring case and punctuation at the ends (the model keeps '.', ':' and the like in the
line but not in its words).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def loose(text: str) -> str:
    return re.sub(r"^\W+|\W+$", "", text).lower()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd_test")
    ap.add_argument("--use_hpip", action="store_true")
    args = ap.parse_args(argv)
    from ocrflow import create_pipeline

    pipeline = create_pipeline("OCR", use_hpip=args.use_hpip, return_word_box=True)
    images = sorted((args.data / "images").glob("*.png"))
    total = boxed = same = same_loose = 0
    for res in pipeline.predict([str(p) for p in images]):
        stem = Path(res["input_path"]).stem
        form = json.loads((args.data / "annotations" / f"{stem}.json").read_text())["form"]
        ours = [(w, np.asarray(q).min(axis=0).tolist() + np.asarray(q).max(axis=0).tolist())
                for ws, qs in zip(res["text_word"], res["text_word_region"]) for w, q in zip(ws, qs)]
        for entity in form:
            for word in entity["words"]:
                if not word["text"].strip():
                    continue
                total += 1
                hits = [w for w, box in ours if iou(box, word["box"]) > 0.5]
                boxed += bool(hits)
                same += word["text"] in hits
                same_loose += loose(word["text"]) in {loose(w) for w in hits}
    print(f"FUNSD ({args.data.name}, {len(images)} forms), {total} labelled words; predicted word box at IoU > 0.5:")
    print(f"  any text:                       {boxed:5d} ({100 * boxed / total:.1f}%)")
    print(f"  the same text:                  {same:5d} ({100 * same / total:.1f}%)")
    print(f"  the same text, loosely matched: {same_loose:5d} ({100 * same_loose / total:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
