"""Memory soak: RSS over many predictions of varying image sizes (is the footprint flat?).

    python benchmarks/soak.py [--n 10000] [--backend auto] [--use_hpip]

Each prediction reads the demo image scaled to a random size (long side 160 px to --max_side, random aspect
changes) so the models see ever-new input shapes. RSS is sampled every --every predictions; the
verdict compares the last sample with the one after warm-up (--warmup predictions).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--use_hpip", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max_side", type=int, default=1600, help="largest long side of the varied images")
    args = ap.parse_args(argv)
    from ocrflow import create_pipeline

    pipeline = create_pipeline("OCR", backend=args.backend, use_hpip=args.use_hpip)
    base = cv2.imread(str(ROOT / "tests" / "data" / "general_ocr_002.png"))
    rng = np.random.default_rng(args.seed)
    samples = []
    t0 = time.perf_counter()
    after_warmup = None
    for i in range(1, args.n + 1):
        long_side = int(rng.integers(160, args.max_side + 1))
        aspect = float(rng.uniform(0.5, 2.0))
        h, w = base.shape[:2]
        scale = long_side / max(h, w)
        size = (max(8, int(w * scale * aspect ** 0.5)), max(8, int(h * scale / aspect ** 0.5)))
        next(pipeline.predict(cv2.resize(base, size)))
        if i == args.warmup:
            after_warmup = rss_mib()
        if i % args.every == 0 or i == args.n:
            samples.append((i, rss_mib(), time.perf_counter() - t0))
            print(f"{i:6d} predictions  RSS {samples[-1][1]:7.1f} MiB  {samples[-1][2]:7.1f} s", flush=True)
    last = samples[-1][1]
    growth = (last - after_warmup) / after_warmup if after_warmup else float("nan")
    print(f"RSS after {args.warmup} warm-up predictions: {after_warmup:.1f} MiB; after {args.n}: {last:.1f} MiB "
          f"({100 * growth:+.1f}%); peak sample {max(s[1] for s in samples):.1f} MiB")
    # A leak grows; RSS that drops after warm-up (freed transient buffers) is not one.
    print("no growth beyond 10%: flat" if growth <= 0.10 else "GROWS: more than 10% above the warm-up level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
