"""`ocrflow batch` on Ray against the in-process command, side by side in one run, and a long run.

    python benchmarks/batch.py [--pages 200] [--rounds 1] [--data DIR] [--json FILE]
                               [--configs inproc,ray_1x2,ray_2x1,ray_1x1] [--pages_per_block N]
    python benchmarks/batch.py --long 20000 [--json FILE]

Throughput: the same PAGES pages (FUNSD's 50 scanned forms, repeated under other names) through
  inproc   `ocrflow --pipeline OCR --input <folder> --quiet` (one process, 2 inference threads)
  ray_1x2  `ocrflow batch` with 1 worker x 2 threads (--workers 1 --cpus_per_worker 2)
  ray_2x1  `ocrflow batch` with 2 workers x 1 thread
  ray_1x1  `ocrflow batch` with 1 worker x 1 thread (for the 2-worker speed-up)
each a fresh process, round-robin over --rounds; pages/s over the whole command (Ray's start and
the model loading included), the median round of each, and the median of the same-round ratios.
Ray's own figure once the first page is back (steady_pages_per_s) is shown beside it.

Long run (--long N): N small synthetic pages (a line of text each) through `ocrflow batch` with
2 workers x 1 thread, sampling the resident memory of the driver and of each worker every 2 s:
the figures at 10%, 50% and 90% of the run and the change from the second tenth of the run (the
first is Ray and the models starting) to the last.

The machine's load average is printed with each run: on a shared machine figures move.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNSD = Path("/work/shared/data/funsd_test/images")
CONFIGS = {
    "inproc": None,
    "ray_1x2": ["--workers", "1", "--cpus_per_worker", "2"],
    "ray_2x1": ["--workers", "2", "--cpus_per_worker", "1"],
    "ray_1x1": ["--workers", "1", "--cpus_per_worker", "1"],
}


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_USAGE_STATS_ENABLED": "0"}


def load() -> float:
    return os.getloadavg()[0]


def make_pages(folder: Path, data: Path, count: int) -> None:
    files = sorted(p for p in data.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for i in range(count):
        src = files[i % len(files)]
        shutil.copy(src, folder / f"{i:05d}_{src.name}")


def run_config(name: str, folder: Path, work: Path, block: int | None = None) -> dict:
    base = [sys.executable, "-m", "ocrflow.cli"]
    if CONFIGS[name] is None:
        cmd = [*base, "--pipeline", "OCR", "--input", str(folder), "--quiet", "--cpu_threads", "2"]
    else:
        out = work / f"out-{name}-{time.monotonic_ns()}"
        cmd = [*base, "batch", "--input", str(folder), "--output", str(out), *CONFIGS[name]]
        if block:
            cmd += ["--pages_per_block", str(block)]
    before = load()
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    pages = sum(1 for p in folder.iterdir())
    result = {"seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 3), "load_before": before,
              "load_after": load()}
    if CONFIGS[name] is not None:
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"] and summary["results"] == pages, summary
        result["steady_pages_per_s"] = summary["steady_pages_per_s"]
        result["first_page_s"] = summary["first_page_s"]
        shutil.rmtree(out)
    print(f"  {name:8} {result}", flush=True)
    return result


def throughput(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ocrflow-bench-"))
    try:
        folder = work / "pages"
        folder.mkdir()
        make_pages(folder, args.data, args.pages)
        rounds = {name: [] for name in args.configs}
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}, {args.pages} pages", flush=True)
            for name in args.configs:
                rounds[name].append(run_config(name, folder, work, args.pages_per_block))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median_ratio(a: str, b: str) -> float:
        return round(statistics.median(x["pages_per_s"] / y["pages_per_s"] for x, y in zip(rounds[a], rounds[b])), 3)

    median = {name: sorted(rs, key=lambda x: x["pages_per_s"])[len(rs) // 2] for name, rs in rounds.items()}
    pairs = [("ray_1x2", "inproc"), ("ray_2x1", "inproc"), ("ray_2x1", "ray_1x1")]
    ratios = {f"{a} / {b}": median_ratio(a, b) for a, b in pairs if a in rounds and b in rounds}
    print("median pages/s:", {k: v["pages_per_s"] for k, v in median.items()})
    print("ratios (median of same-round ratios):", ratios)
    return {"pages": args.pages, "median": median, "ratios": ratios, "rounds": rounds}


def synthetic_pages(folder: Path, count: int) -> None:
    """Small pages of one printed line each, all different (cv2's Hershey font)."""
    import cv2
    import numpy as np

    for i in range(count):
        page = np.full((96, 480, 3), 255, np.uint8)
        cv2.putText(page, f"Invoice {i:06d} paid", (12, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
        cv2.imwrite(str(folder / f"{i:06d}.png"), page)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def workers_of(driver: int) -> list[int]:
    """The OCR actors (Ray Data MapWorker processes) below `driver`: its local Ray's raylet is its
    child, the actors the raylet's. Other Ray runs on the machine are not counted."""
    parent, workers = {}, []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if b"MapWorker" in (entry / "cmdline").read_bytes():
                    workers.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == driver:
                return True
        return False

    return [pid for pid in workers if below(pid)]


def long_run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ocrflow-long-"))
    try:
        folder = work / "pages"
        folder.mkdir()
        synthetic_pages(folder, args.long)
        out = work / "out"
        cmd = [sys.executable, "-m", "ocrflow.cli", "batch", "--input", str(folder), "--output", str(out),
               "--workers", "2", "--cpus_per_worker", "1", "--pages_per_block", "32", "--log_every", "1000"]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples = []  # (seconds, pages written, driver MiB, {worker pid: MiB})
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        while proc.poll() is None:
            written = sum(1 for _ in (out / "results").glob("part-*")) if (out / "results").is_dir() else 0
            workers = {pid: rss_mib(pid) for pid in workers_of(proc.pid)}
            samples.append((round(time.monotonic() - start, 1), written, rss_mib(proc.pid),
                            {p: m for p, m in workers.items() if m}))
            time.sleep(2)
        reader.join()
        if proc.returncode != 0:
            raise SystemExit(f"long run failed:\n{''.join(lines)[-3000:]}")
        summary = json.loads((out / "summary.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    busy = [s for s in samples if s[3]]  # while the workers ran

    def at(frac: float) -> dict:
        s = busy[min(len(busy) - 1, int(frac * len(busy)))]
        return {"seconds": s[0], "shards": s[1], "driver_mib": round(s[2] or 0, 1),
                "workers_mib": sorted(round(m, 1) for m in s[3].values())}

    def tenth(part: list) -> tuple[float, float]:
        return (statistics.median(s[2] for s in part if s[2]),
                statistics.median(statistics.mean(s[3].values()) for s in part))

    n = max(1, len(busy) // 10)
    (d0, w0), (d1, w1) = tenth(busy[n : 2 * n]), tenth(busy[-n:])  # the first tenth is the models loading
    result = {"pages": args.long, "summary": {k: summary[k] for k in ("results", "errors", "complete", "wall_s",
                                                                       "pages_per_s", "steady_pages_per_s")},
              "at_10%": at(0.1), "at_50%": at(0.5), "at_90%": at(0.9),
              "driver_mib_2nd_last_tenth": [round(d0, 1), round(d1, 1), f"{100 * (d1 / d0 - 1):+.1f}%"],
              "worker_mib_2nd_last_tenth": [round(w0, 1), round(w1, 1), f"{100 * (w1 / w0 - 1):+.1f}%"]}
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data", type=Path, default=FUNSD, help="images to repeat (default FUNSD's test forms)")
    ap.add_argument("--long", type=int, help="the long run instead: this many small synthetic pages")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--configs", type=lambda v: v.split(","), default=list(CONFIGS),
                    help=f"which of {','.join(CONFIGS)} to run (default all)")
    ap.add_argument("--pages_per_block", type=int, help="ocrflow batch's --pages_per_block (default: its own)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {load():.2f}", flush=True)
    figures = long_run(args) if args.long else throughput(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
