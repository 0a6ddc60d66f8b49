"""Load benchmark of `ocrflow serve` (not a test): N concurrent clients x M requests of the demo image.

    .venv/bin/python benchmarks/serve_load.py                       # starts a server, 8 clients x 200
    .venv/bin/python benchmarks/serve_load.py --clients 4 --requests 50 --threads 2 --cpu_threads 1
    .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:8080   # a server already running

Reports errors, requests/s, latency p50/p95/p99, and the server's resident memory (the whole process
tree: all uvicorn workers) after start-up, after warm-up and after the load. Traffic goes to the
given URL only (loopback by default), in a bounded number of requests.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "general_ocr_002.png"


def tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "ocrflow.cli", "serve", "--port", str(port), "--workers", str(args.workers),
           "--threads", str(args.threads), "--queue_size", str(args.queue_size), "--log_level", "warning"]
    if args.cpu_threads:
        cmd += ["--cpu_threads", str(args.cpu_threads)]
    # The log goes to a file: an unread pipe fills up under load (5xx and 503 lines) and blocks the server.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited: {log.read().decode(errors='replace')}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start in 120 s")


def run_clients(url: str, payload: dict, clients: int, per_client: int) -> tuple[list[float], Counter, float]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def client():
        with requests.Session() as session:
            for _ in range(per_client):
                start = time.perf_counter()
                try:
                    resp = session.post(f"{url}/ocr", json=payload, timeout=120)
                    ok = resp.status_code == 200 and resp.json().get("errorCode") == 0
                    status = resp.status_code if ok or resp.status_code != 200 else "bad-body"
                except requests.RequestException as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start `ocrflow serve` on a free loopback port)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200, help="requests per client")
    ap.add_argument("--warmup", type=int, default=8, help="requests before measuring")
    ap.add_argument("--image", type=Path, default=DEMO)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queue_size", type=int, default=8)
    ap.add_argument("--cpu_threads", type=int)
    ap.add_argument("--server_pid", type=int, help="with --url: the server's pid, for its memory")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    payload = {"file": base64.b64encode(args.image.read_bytes()).decode("ascii"), "fileType": 1}
    proc = None
    if args.url:
        url, pid = args.url.rstrip("/"), args.server_pid
    else:
        proc, url = start_server(args)
        pid = proc.pid
    try:
        rss_start = tree_rss(pid) if pid else None
        run_clients(url, payload, min(args.clients, args.warmup), max(1, args.warmup // max(1, args.clients)))
        rss_before = tree_rss(pid) if pid else None
        latencies, statuses, wall = run_clients(url, payload, args.clients, args.requests)
        rss_after = tree_rss(pid) if pid else None
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    total = sum(statuses.values())
    errors = total - statuses.get(200, 0)
    mib = (lambda b: round(b / 2**20, 1)) if pid else (lambda b: None)
    report = {
        "clients": args.clients, "requests": total, "errors": errors,
        "statuses": {str(k): v for k, v in statuses.items()},
        "requests_per_s": round(total / wall, 2), "wall_s": round(wall, 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "rss_start_mib": mib(rss_start),
        "rss_before_mib": mib(rss_before),
        "rss_after_mib": mib(rss_after),
        "rss_growth_pct": round(100 * (rss_after - rss_before) / rss_before, 1) if pid else None,
        "server": "external" if args.url else f"workers={args.workers} threads={args.threads} "
                  f"queue_size={args.queue_size} cpu_threads={args.cpu_threads or 'all'}",
        "image": args.image.name, "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
