"""Parity with the official stack: run ocrflow on the images of a reference JSONL and compare.

    python benchmarks/parity.py ../shared/reference/samples.jsonl [--shared ../shared] [--details]
    python benchmarks/parity.py ../shared/reference/v6_small/*.jsonl --shared ../shared --ocr_version PP-OCRv6

Reports the share of images whose boxes are identical, the share of lines (paired by identical
box) whose text is identical, and lists what differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocrflow import create_pipeline


def compare(ref: dict, res: dict) -> dict:
    ref_polys = [tuple(map(tuple, p)) for p in ref["dt_polys"]]
    our_polys = [tuple(map(tuple, p)) for p in res["dt_polys"].tolist()]
    ours = dict(zip(our_polys, res["rec_text"]))
    pairs = [(t, ours.get(p)) for p, t in zip(ref_polys, ref["rec_text"])]
    return {
        "same_boxes": ref_polys == our_polys,
        "lines": len(ref_polys),
        "same_text": sum(1 for t, o in pairs if o == t),
        "diffs": [(t, o) for t, o in pairs if o != t],
        "n_ref": len(ref_polys),
        "n_ours": len(our_polys),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", nargs="+", help="reference JSONL files (../shared/reference/*.jsonl)")
    ap.add_argument("--shared", default=None, help="folder the reference paths are relative to")
    ap.add_argument("--details", action="store_true", help="print every differing line")
    ap.add_argument("--det_model", help="detection model (default: the pipeline's)")
    ap.add_argument("--rec_model", help="recognition model (default: the pipeline's)")
    ap.add_argument("--ocr_version", help="PP-OCRv4 | PP-OCRv5 | PP-OCRv6: the det/rec pair of that version")
    ap.add_argument("--backend", help="auto (default) | onnxruntime | openvino")
    args = ap.parse_args(argv)
    chosen = {k: v for k, v in vars(args).items() if k in ("det_model", "rec_model", "ocr_version", "backend") and v}
    pipe = create_pipeline("OCR", **chosen)
    total = {"images": 0, "same_boxes": 0, "lines": 0, "same_text": 0}
    for ref_file in args.reference:
        ref_file = Path(ref_file)
        shared = Path(args.shared) if args.shared else ref_file.parent.parent
        stats = {"images": 0, "same_boxes": 0, "lines": 0, "same_text": 0}
        for line in ref_file.read_text(encoding="utf-8").splitlines():
            ref = json.loads(line)
            res = next(pipe.predict(str(shared / ref["path"])))
            c = compare(ref, res)
            stats["images"] += 1
            stats["same_boxes"] += c["same_boxes"]
            stats["lines"] += c["lines"]
            stats["same_text"] += c["same_text"]
            if args.details and (not c["same_boxes"] or c["diffs"]):
                print(f"  {ref['path']}: boxes {'same' if c['same_boxes'] else 'DIFFER'} "
                      f"({c['n_ref']} ref / {c['n_ours']} ours); text diffs: {c['diffs'][:8]}")
        for k in total:
            total[k] += stats[k]
        print(f"{ref_file.name}: {stats['same_boxes']}/{stats['images']} images with identical boxes, "
              f"{stats['same_text']}/{stats['lines']} lines with identical text "
              f"({100 * stats['same_text'] / max(stats['lines'], 1):.2f}%)", flush=True)
    share = 100 * total["same_boxes"] / max(total["images"], 1)
    print(f"all: {total['same_boxes']}/{total['images']} images ({share:.1f}%)"
          f" with identical boxes, {total['same_text']}/{total['lines']} lines "
          f"({100 * total['same_text'] / max(total['lines'], 1):.2f}%) with identical text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
