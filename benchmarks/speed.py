"""Speed of ocrflow against the reference systems, side by side in one run.

    python benchmarks/speed.py [INPUT ...] [--systems ocrflow,rapid,paddle] [--runs 1] [--warmup 0] [--rounds 1]

INPUT: image files or folders (default: the images under tests/data). The references are the ones
`../shared/anchors/SETUP.md` builds (RapidOCR 1.4.4 on ONNX Runtime; PaddleOCR 3.7.0 on Paddle
Inference with oneDNN), found under --anchors (default ~/.cache/ocrflow-anchors); a missing one is
skipped with a note. Every system runs the seed's settings (960/max, 0.3/0.6/1.5, rec batch 6) on
the same images, one after another, each in its own process with 2 threads by default.

Prints images/s, p50/p95 latency per image (use_hpip: of one image per call, see run_ocrflow.py),
peak RSS, the ratio of ocrflow to each reference, how often the texts agree with the official
stack, and ocrflow's time per stage.

By default every image is timed the first time a system sees it (after one image for start-up):
engines prepare kernels per input shape, so a warm-up pass over the same images (--warmup 1)
measures them with those kernels ready, as a long job meets shapes it has seen before.

A shared machine drifts by 5-10% over minutes: --rounds 3 runs all systems three times, round-robin,
and reports each system's median round and the median of the same-round ratios.

--models v4 | v6_small | v6_tiny: the det/rec pair every system runs (default v4, the seed's). For
the PP-OCRv6 pairs the official stack runs the same ONNX weights on its ONNX Runtime engine (the model
folders of ocrflow's cache hold inference.onnx + inference.yml, PaddleX's layout; `ocrflow models
fetch` them first); RapidOCR is skipped. --set KEY=VALUE passes a pipeline setting to ocrflow (e.g.
--set use_doc_orientation_classify=true to measure what a stage costs).

--json FILE writes {"median": {system: results of its median round}, "rounds": {system: [results per round]}}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ocrflow.timing import MODELS, STAGES

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
PAIRS = {"v4": ("PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"),
         "v6_small": ("PP-OCRv6_small_det", "PP-OCRv6_small_rec"),
         "v6_tiny": ("PP-OCRv6_tiny_det", "PP-OCRv6_tiny_rec")}


def collect(inputs: list[str]) -> list[str]:
    paths: list[str] = []
    for item in inputs or [str(ROOT / "tests" / "data")]:
        p = Path(item)
        if p.is_dir():
            paths += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in SUFFIXES)
        else:
            paths.append(str(p))
    return paths


def run(cmd: list[str], env: dict | None = None) -> tuple[list[dict], float, str]:
    """Run one system; its JSON lines, its peak RSS in MiB (wait4), and its stderr tail."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = [json.loads(ln) for ln in out.read().decode().splitlines() if ln.startswith("{")]
        tail = err.read().decode(errors="replace")[-2000:]
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed ({proc.returncode}):\n{tail}")
    return lines, usage.ru_maxrss / 1024, tail


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summarise(name: str, lines: list[dict], rss: float) -> dict:
    images = [ln for ln in lines if "path" in ln]
    secs = [ln["seconds"] for ln in images]
    # use_hpip yields in groups: its latency comes from a pass of one image per call (run_ocrflow --latency)
    latency_pass = all("latency" in ln for ln in images)
    waits = [ln["latency"] for ln in images] if latency_pass else secs
    extra = [ln["summary"] for ln in lines if "summary" in ln]
    # whole passes where given: use_hpip's per-image times pile onto the first image of a group
    wall = statistics.median(extra[0]["passes"]) if extra and extra[0].get("passes") else sum(secs)
    out = {"system": name, "images": len(images), "images_per_s": len(secs) / wall,
           "p50_s": statistics.median(waits), "p95_s": percentile(waits, 0.95), "peak_rss_mib": rss,
           "latency_pass": latency_pass,
           "texts": {ln["path"]: ln["texts"] for ln in images}}
    stages = [ln["stages"] for ln in images if "stages" in ln]
    if stages:
        total = {k: sum(s.get(k, 0.0) for s in stages) for k in STAGES}
        out["stages_s"] = total
        # The wall time in which no model ran (untimed gaps included), as a share: where detection
        # ran ahead in a thread its time overlaps this thread's, so the models' union is taken
        # (StageTimer's MODELS); older runs without it: their sum.
        models = sum(s.get(MODELS, s.get("det_model", 0.0) + s.get("rec_model", 0.0)) for s in stages)
        out["outside_share"] = 1 - models / sum(secs)
    if extra:
        out["startup"] = extra[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--systems", default="ocrflow,rapid,paddle")
    ap.add_argument("--anchors", default=str(Path.home() / ".cache" / "ocrflow-anchors"))
    ap.add_argument("--anchor-scripts", default=str(ROOT.parent / "shared" / "anchors"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every system this many times, round-robin; report medians (default 1)")
    ap.add_argument("--warmup", type=int, default=0, help="passes over the images before timing (default 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--use_hpip", action="store_true", help="also run ocrflow with use_hpip=True")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--models", choices=tuple(PAIRS), default="v4", help="the det/rec pair (default v4)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an ocrflow pipeline setting")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    paths = collect(args.inputs)[: args.limit]
    anchors, scripts = Path(args.anchors), Path(args.anchor_scripts)
    common = ["--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths))
        listing = f.name
    det_name, rec_name = PAIRS[args.models]
    ours = [f"--set={s}" for s in (f"det_model={det_name}", f"rec_model={rec_name}", *args.set)]
    official = []
    if args.models != "v4":  # the same ONNX weights on PaddleX's ONNX Runtime engine
        from ocrflow.models import store

        for name in (det_name, rec_name):
            store.fetch(name)
        official = ["--engine", "onnxruntime", "--models", str(store.home() / "models"), "--det-name", det_name,
                    "--rec-name", rec_name]
    commands = {
        "ocrflow": [sys.executable, str(ROOT / "benchmarks" / "run_ocrflow.py"), "--list", listing, *common, *ours],
        "ocrflow-hpip": [sys.executable, str(ROOT / "benchmarks" / "run_ocrflow.py"), "--list", listing, *common,
                         *ours, "--use_hpip", "--latency"],
        "rapid": [str(anchors / "venv-rapid" / "bin" / "python"), str(scripts / "run_rapid.py"), "--list", listing,
                  *common],
        "paddle": [str(anchors / "venv-paddle" / "bin" / "python"), str(scripts / "run_paddle.py"), "--list",
                   listing, *common, *official],
    }
    systems = []
    for name in args.systems.split(",") + (["ocrflow-hpip"] if args.use_hpip else []):
        if name == "rapid" and args.models != "v4":
            print("  rapid: skipped (its runner takes the v4 pair only)")
            continue
        if Path(commands[name][0]).exists() and Path(commands[name][1]).exists():
            systems.append(name)
        else:
            print(f"  {name}: skipped (not built: see ../shared/anchors/SETUP.md)")
    if not systems:
        print("nothing to run")
        os.unlink(listing)
        return 1
    print(f"{len(paths)} images, {args.threads} threads, {args.runs} run(s) after {args.warmup} warm-up pass(es), "
          f"{args.rounds} round(s)")
    rounds: dict[str, list[dict]] = {name: [] for name in systems}
    for r in range(args.rounds):
        for name in systems[r % len(systems):] + systems[: r % len(systems)]:  # each round starts elsewhere
            print(f"  round {r + 1}: running {name} ...", flush=True)
            lines, rss, _ = run(commands[name], env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            rounds[name].append(summarise(name, lines, rss))
    # Per system the round of median throughput (the lower one for even N); ratios are the (low)
    # medians of same-round ratios, which cancel the drift of a shared machine between rounds.
    results = {name: sorted(rs, key=lambda x: x["images_per_s"])[(len(rs) - 1) // 2] for name, rs in rounds.items()}
    if args.rounds > 1:
        for name, rs in rounds.items():
            print(f"  {name} images/s per round: " + ", ".join(f"{x['images_per_s']:.3f}" for x in rs))
    print(f"\n{'system':14} {'img/s':>7} {'p50 s':>7} {'p95 s':>7} {'RSS MiB':>8} {'same text':>10}")
    official = results.get("paddle")
    for name, r in results.items():
        same = ""
        if official and name != "paddle":
            agree = sum(r["texts"][p] == official["texts"].get(p) for p in r["texts"])
            same = f"{agree}/{len(r['texts'])}"
        mark = "*" if r.get("latency_pass") else " "
        print(f"{name:14} {r['images_per_s']:7.3f} {r['p50_s']:7.3f}{mark}{r['p95_s']:7.3f}{mark}"
              f"{r['peak_rss_mib']:8.0f} {same:>10}")
    if any(r.get("latency_pass") for r in results.values()):
        print("  * latency of one image per predict() call, timed after the passes (use_hpip's results over a "
              "list come in groups)")
    for ours in ("ocrflow", "ocrflow-hpip"):
        for ref in ("paddle", "rapid"):
            if ours in results and ref in results:
                ratios = [a["images_per_s"] / b["images_per_s"] for a, b in zip(rounds[ours], rounds[ref])]
                spread = f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else ""
                print(f"throughput {ours} / {ref}: {statistics.median_low(ratios):.2f}x{spread}")
    ours = [n for n in ("ocrflow", "ocrflow-hpip") if "stages_s" in results.get(n, {})]
    if ours:
        print("\ntime per stage, all images (s and share of the stages' sum; stages of detection run "
              "ahead overlap the others): " + "   ".join(ours))
        for k in results[ours[0]]["stages_s"]:
            cells = []
            for n in ours:
                st = results[n]["stages_s"]
                cells.append(f"{st.get(k, 0.0):8.3f} {100 * st.get(k, 0.0) / sum(st.values()):5.1f}%")
            print(f"  {k:11}" + "   ".join(cells))
        print("  outside the model forward passes: " + "   ".join(
            f"{100 * results[n]['outside_share']:.1f}%" for n in ours) + " of the wall time")
        for n in ours:
            su = results[n].get("startup", {})
            if su:
                print(f"  {n} start-up: import {su['import']:.2f} s, model load {su['load']:.2f} s, "
                      f"first result {su['first_result']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"median": results, "rounds": rounds}, indent=1, ensure_ascii=False),
                                   encoding="utf-8")
    os.unlink(listing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
