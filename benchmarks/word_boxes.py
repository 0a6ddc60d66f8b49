"""Word boxes (return_word_box) against FUNSD's labelled words, and against the official stack.

    python benchmarks/word_boxes.py [--data ../shared/data/funsd_test] [--use_hpip]
    python benchmarks/word_boxes.py --official official_words.jsonl     # see official_word_boxes.py

For every labelled word of every form (FUNSD annotations: form entities -> words, each a box and a
text), is there a predicted word whose axis-aligned box overlaps it at IoU > 0.5? Reported: the
share of labelled words matched by a box alone, by a box with the same text, and by a box with the
same text ignoring case and punctuation at the ends (the model keeps '.', ':' and the like in the
line but not in its words). The words are those the exports place (`res.words`, boxes through the
crop's geometry). --official compares text_word / text_word_region with the official stack's, line
by line, on the images it lists.
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
    ap.add_argument("--official", type=Path, help="JSON lines of benchmarks/official_word_boxes.py")
    args = ap.parse_args(argv)
    from ocrflow import create_pipeline

    pipeline = create_pipeline("OCR", use_hpip=args.use_hpip, return_word_box=True)
    if args.official:
        return compare(pipeline, args.official)
    images = sorted((args.data / "images").glob("*.png"))
    total = boxed = same = same_loose = 0
    for res in pipeline.predict([str(p) for p in images]):
        stem = Path(res["input_path"]).stem
        form = json.loads((args.data / "annotations" / f"{stem}.json").read_text())["form"]
        ours = [(w, np.asarray(q).min(axis=0).tolist() + np.asarray(q).max(axis=0).tolist())
                for line in res.words for w, q in line]
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


def compare(pipeline, official: Path) -> int:
    rows = [json.loads(line) for line in official.read_text(encoding="utf-8").splitlines() if line.strip()]
    images = lines = same_words = same_boxes = whole = 0
    for row in rows:
        (res,) = pipeline.predict(row["path"])
        if res["rec_text"] != row["rec_texts"]:
            continue  # a line read differently changes its words: compared where the text is the same
        images += 1
        boxes = [[[int(v) for v in (*np.asarray(q).min(axis=0), *np.asarray(q).max(axis=0))] for q in line]
                 for line in res["text_word_region"]]
        ok = 0
        for ours_w, theirs_w, ours_b, theirs_b in zip(res["text_word"], row["text_word"], boxes,
                                                      row["text_word_boxes"]):
            lines += 1
            same_words += ours_w == theirs_w
            same_boxes += ours_w == theirs_w and ours_b == theirs_b
            ok += ours_w == theirs_w and ours_b == theirs_b
        whole += ok == len(boxes)
    print(f"{images} of {len(rows)} images with the official text; {lines} lines: words identical in "
          f"{same_words} ({100 * same_words / max(lines, 1):.2f}%), words and boxes in {same_boxes} "
          f"({100 * same_boxes / max(lines, 1):.2f}%); every line identical in {whole} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
