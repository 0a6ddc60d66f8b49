"""Peak memory of one predict() on a page at the pixel limit (what max_pixels bounds).

    python benchmarks/input_memory.py [--side 10000] [--kinds png1,jpg,rgba16,pdf]

Each kind runs in a fresh process: the file is made first (in another process), then the pipeline
is loaded and warmed up, then one predict() reads the file. Printed: the peak RSS before and after
that predict() and the difference, which is what one such page costs.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make(kind: str, side: int) -> bytes:
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    import hostile

    if kind == "png1":  # 1-bit PNG: tiny file, side^2 pixels
        return hostile.huge_png(side)
    if kind == "jpg":
        return cv2.imencode(".jpg", np.full((side, side, 3), 200, np.uint8))[1].tobytes()
    if kind == "rgba16":  # 16-bit RGBA, half transparent: the most bytes per decoded pixel
        pixels = np.zeros((side, side, 4), np.uint16)
        pixels[..., 3] = 30000
        return cv2.imencode(".png", pixels)[1].tobytes()
    if kind == "pdf":  # a page of side/2 points: side x side pixels at 144 dpi
        return hostile.huge_page(side / 2)
    raise SystemExit(f"unknown kind {kind}")


def measure(path: str, kind: str, side: int) -> None:
    import numpy as np

    from ocrflow import InputError, create_pipeline

    data = Path(path).read_bytes()
    pipeline = create_pipeline("OCR", device="cpu")
    list(pipeline.predict(np.full((64, 64, 3), 255, np.uint8)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    try:
        outcome = f"{len(list(pipeline.predict(data)))} page(s)"
    except InputError as exc:
        outcome = f"InputError: {exc}"[:80]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{kind:7} {side}x{side} ({side * side / 1e6:.0f} Mpx, {len(data) / 1e3:.0f} KB): {outcome}; "
          f"peak RSS {base:.0f} -> {peak:.0f} MiB (+{peak - base:.0f}), {time.perf_counter() - start:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=10000)
    ap.add_argument("--kinds", default="png1,jpg,rgba16,pdf")
    ap.add_argument("--_make", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._make:
        kind, side, path = args._make
        Path(path).write_bytes(make(kind, int(side)))
        return 0
    if args._measure:
        path, kind, side = args._measure
        measure(path, kind, int(side))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            path = str(Path(tmp) / kind)
            me = [sys.executable, __file__]
            subprocess.run([*me, "--_make", kind, str(args.side), path], check=True)
            subprocess.run([*me, "--_measure", path, kind, str(args.side)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
