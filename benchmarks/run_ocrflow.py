"""ocrflow's side of the speed benchmark, in the reference scripts' output format.

    python benchmarks/run_ocrflow.py --list imgs.txt [--runs 1] [--warmup 1] [--threads 2] [--use_hpip] [--latency]

One JSON line per image on stdout: path, boxes, texts, scores, seconds (median over runs, the time
between its result and the previous one as `predict(list)` yields them, reading included), plus
"stages" (seconds per stage in that interval, median run). A last line {"summary": ...} holds the wall
time of each pass over the whole list, the model load time and the time to first result.

use_hpip recognises the lines of several images together, so its results come in groups and the
time between them is no latency. --latency adds, after the timed passes, one predict() call per
image and reports those seconds as "latency" (what a caller sending one image at a time waits).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import yaml

T_START = time.perf_counter()

from ocrflow import create_pipeline  # noqa: E402
from ocrflow.timing import StageTimer  # noqa: E402

T_IMPORT = time.perf_counter() - T_START


def timed_pass(pipeline, paths: list[str]) -> tuple[list, list[float], list[dict]]:
    """Results, seconds and stage seconds per image of one predict() over the whole list."""
    timer = StageTimer()
    results, seconds, stages, before = [], [], [], {}
    t = time.perf_counter()
    for res in pipeline.predict(paths, on_error="raise", timer=timer):
        now = time.perf_counter()
        seconds.append(now - t)
        t = now
        snap = dict(timer.seconds)
        stages.append({k: v - before.get(k, 0.0) for k, v in snap.items()})
        before = snap
        results.append(dict(res))  # the fields only: an OCRResult also holds its decoded image
    return results, seconds, stages


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="*")
    ap.add_argument("--list")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--use_hpip", action="store_true")
    ap.add_argument("--latency", action="store_true", help="time one predict() call per image after the passes")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a pipeline setting (YAML value), e.g. --set det_model=PP-OCRv6_small_det")
    args = ap.parse_args()
    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value)
    paths = list(args.images)
    if args.list:
        paths += [ln.strip() for ln in open(args.list, encoding="utf-8") if ln.strip()]
    t0 = time.perf_counter()
    # process_tuning as the CLI and the service run: heap trimming, oneDNN kernel cache
    pipeline = create_pipeline("OCR", device="cpu", use_hpip=args.use_hpip, cpu_threads=args.threads,
                               process_tuning=True, **settings)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    next(pipeline.predict(paths[0]))
    first = time.perf_counter() - t0
    for _ in range(args.warmup):
        timed_pass(pipeline, paths)
    seconds: dict[str, list[float]] = {p: [] for p in paths}
    stages: dict[str, list[dict]] = {p: [] for p in paths}
    results: dict[str, dict] = {}
    passes = []
    for _ in range(max(args.runs, 1)):
        t_pass = time.perf_counter()
        res, secs, sts = timed_pass(pipeline, paths)
        passes.append(time.perf_counter() - t_pass)
        for p, r, sec, st in zip(paths, res, secs, sts, strict=True):  # one page per image
            results[p] = r
            seconds[p].append(sec)
            stages[p].append(st)
    latency = {}
    for p in paths if args.latency else ():
        t0 = time.perf_counter()
        next(pipeline.predict(p))
        latency[p] = time.perf_counter() - t0
    for p in paths:
        r = results[p]
        mid = sorted(range(len(seconds[p])), key=seconds[p].__getitem__)[len(seconds[p]) // 2]
        print(json.dumps({"path": p, "boxes": r["dt_polys"].tolist(), "texts": r["rec_text"],
                          "scores": r["rec_score"], "seconds": statistics.median(seconds[p]),
                          "all_seconds": seconds[p], "stages": stages[p][mid],
                          **({"latency": latency[p]} if p in latency else {})}, ensure_ascii=False))
    print(json.dumps({"summary": {"passes": passes, "import": T_IMPORT, "load": load,
                                  "first_result": first}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
