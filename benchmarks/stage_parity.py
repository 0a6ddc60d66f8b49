"""Page orientation: ocrflow's angle beside the official stack's, page by page.

    python benchmarks/stage_parity.py /tmp/official_stages/out/doc_ori_sroie_dev.jsonl [...] [--details]

Takes the JSONL that benchmarks/official_stages.py --task doc_ori --turn writes (run from the same
folder, so that its relative paths resolve): each image turned `turn` degrees counter-clockwise
(np.rot90), and the angle PaddleX 3.7.2's PP-LCNet_x1_0_doc_ori gave it. ocrflow's DocOrientation
classifies the same turned arrays. Reports the share of identical angles and the share of right
ones ((360 - turn) % 360 undoes a turn) for both.
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np

from ocrflow import create_pipeline


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", nargs="+")
    ap.add_argument("--details", action="store_true", help="print every page whose angle differs")
    args = ap.parse_args(argv)
    stage = create_pipeline("OCR", use_doc_orientation_classify=True).stage("doc_ori")
    for ref_path in args.reference:
        rows = [json.loads(line) for line in open(ref_path, encoding="utf-8") if line.strip()]
        images: dict[str, np.ndarray] = {}
        same = ours_right = theirs_right = 0
        for row in rows:
            image = images.setdefault(row["path"], cv2.imread(row["path"]))
            angle, _ = stage.classify(np.ascontiguousarray(np.rot90(image, row["turn"] // 90)))
            right = (360 - row["turn"]) % 360
            same += angle == row["angle"]
            ours_right += angle == right
            theirs_right += row["angle"] == right
            if args.details and angle != row["angle"]:
                print(f"  {row['path']} turn {row['turn']}: official {row['angle']}, ocrflow {angle}")
        n = len(rows)
        print(f"{ref_path}: {same}/{n} pages with the official angle ({100 * same / n:.2f}%); right: ocrflow "
              f"{100 * ours_right / n:.2f}%, official {100 * theirs_right / n:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
