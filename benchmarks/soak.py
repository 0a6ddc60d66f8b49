"""Memory soak: RSS over many predictions of varying image sizes (is the footprint flat?).

    python benchmarks/soak.py [--n 10000] [--backend auto] [--use_hpip] [--pages 1]

Each prediction reads the demo image scaled to a random size (long side 160 px to --max_side, random aspect
changes) so the models see ever-new input shapes. RSS is read after every prediction and reported per
window of --every predictions (its peak and its last value); the verdict compares the highest peak of
any later window with the peak of the first window after --warmup predictions. Peaks, not single samples: RSS
rises and falls between the pipeline's periodic heap trims (ocrflow/memory.py). --pages N passes N
images to each predict() call, as a folder job does (use_hpip then recognises them together).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

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
    ap.add_argument("--pages", type=int, default=1, help="images per predict() call (default 1)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a pipeline setting (YAML value), e.g. --set hpip_profile={rec_streams: 1}")
    args = ap.parse_args(argv)
    from ocrflow import create_pipeline

    # process_tuning as the CLI and the service run (ocrflow/memory.py)
    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    pipeline = create_pipeline("OCR", backend=args.backend, use_hpip=args.use_hpip, process_tuning=True, **settings)
    base = cv2.imread(str(ROOT / "tests" / "data" / "general_ocr_002.png"))
    rng = np.random.default_rng(args.seed)
    windows = []  # (predictions so far, peak RSS in the window, RSS at its end, seconds)
    t0 = time.perf_counter()
    peak = 0.0
    done, mark = 0, args.warmup or args.every  # predictions made; where the next window ends

    def varied() -> np.ndarray:
        long_side = int(rng.integers(160, args.max_side + 1))
        aspect = float(rng.uniform(0.5, 2.0))
        h, w = base.shape[:2]
        scale = long_side / max(h, w)
        size = (max(8, int(w * scale * aspect ** 0.5)), max(8, int(h * scale / aspect ** 0.5)))
        return cv2.resize(base, size)

    while done < args.n:
        images = [varied() for _ in range(min(args.pages, args.n - done))]
        for _ in pipeline.predict(images if args.pages > 1 else images[0]):
            pass
        done += len(images)
        rss = rss_mib()
        peak = max(peak, rss)
        if done >= mark or done == args.n:
            windows.append((done, peak, rss, time.perf_counter() - t0))
            print(f"{done:6d} predictions  RSS peak {peak:7.1f} MiB, now {rss:7.1f} MiB  {windows[-1][3]:7.1f} s",
                  flush=True)
            peak = 0.0
            while mark <= done:
                mark += args.every
    if len(windows) < (3 if args.warmup else 2):
        print(f"--n {args.n} leaves fewer than two windows of {args.every} after --warmup {args.warmup}")
        return 1
    after = windows[1:] if args.warmup else windows  # windows[0] ends the warm-up
    first, highest = after[0][1], max(w[1] for w in after[1:])
    growth = (highest - first) / first
    print(f"peak RSS in the {args.every} predictions after warm-up: {first:.1f} MiB; highest peak of a later "
          f"window: {highest:.1f} MiB ({100 * growth:+.1f}%); last window: {after[-1][1]:.1f} MiB")
    # A leak grows; RSS that drops after warm-up (freed transient buffers) is not one.
    print("no growth beyond 10%: flat" if growth <= 0.10 else "GROWS: more than 10% above the warm-up level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
