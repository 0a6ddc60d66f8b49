"""`ocrflow batch`: the pipeline over an archive on Ray (a local Ray by default, --address for a cluster).

    ocrflow batch --input ./scans/ --output ./ocr/ [--workers 2 --cpus_per_worker 1 --format parquet]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ..errors import OcrflowError

SETTINGS = ("det_model", "rec_model", "rec_batch_size", "backend", "pdf_render_scale", "ocr_version")


def build_parser() -> argparse.ArgumentParser:
    from ..cli import DET_FLAGS, LIMIT_FLAGS, add_stage_flags

    ap = argparse.ArgumentParser(
        prog="ocrflow batch",
        description="OCR every page of a folder, list file or glob on Ray, split by page. Resumable: run the "
        "same command again after a crash and only the missing pages are processed; every page ends up in "
        "the output exactly once (see docs/batch.md).",
        epilog="Examples:\n"
        "  ocrflow batch --input ./scans/ --output ./ocr/                   # a local Ray on this machine\n"
        "  ocrflow batch --input list.txt --output /shared/ocr/ --address auto --cpus_per_worker 4\n"
        "Output: results/part-*.{jsonl,parquet} (one record per page), errors.{jsonl,parquet}, summary.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--input", required=True,
                    help="a folder (recursive), a list file (.txt/.lst/.list, one path per line) or a glob")
    ap.add_argument("--output", required=True, help="folder of the shards, errors table and summary")
    ap.add_argument("--pipeline", default="OCR", help="pipeline name (OCR) or path to a pipeline YAML")
    ap.add_argument("--address", help="Ray cluster to join: auto, host:port or ray://host:port "
                    "(default: start a local Ray on this machine)")
    ap.add_argument("--workers", type=int, help="actors, each holding the models (default: cluster CPUs / "
                    "cpus_per_worker)")
    ap.add_argument("--cpus_per_worker", type=int, default=1, help="CPUs and inference threads of each worker "
                    "(default 1)")
    ap.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="shard format (default jsonl)")
    ap.add_argument("--pages_per_block", type=int, default=4, help="pages per Ray task (default 4)")
    ap.add_argument("--shard_pages", type=int, default=256, help="records per shard file (default 256); at most "
                    "this many (or --shard_seconds' worth) are redone after a crash")
    ap.add_argument("--shard_seconds", type=float, default=30.0, help="write a shard at least this often (default 30)")
    ap.add_argument("--log_every", type=int, default=1000, help="a progress line every N pages (default 1000)")
    ap.add_argument("--device", help="cpu, gpu or gpu:N (default: the YAML's, else cpu)")
    ap.add_argument("--use_hpip", action="store_true", help="high-performance inference (see ocrflow --help)")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "openvino"), help="inference backend")
    ap.add_argument("--det_model", help="detection model name, or a local .onnx file / model directory")
    ap.add_argument("--rec_model", help="recognition model name, or a local .onnx file / model directory")
    ap.add_argument("--rec_batch_size", type=int, help="text lines per recognition batch (default 6)")
    ap.add_argument("--pdf_render_scale", type=float, help="PDF pixels per point / 72 dpi (default 2.0)")
    add_stage_flags(ap)
    for name, (kind, text) in {**DET_FLAGS, **LIMIT_FLAGS}.items():
        ap.add_argument(f"--{name}", type=kind, help=text)
    ap.add_argument("--return_word_box", action="store_true", help="add text_word / text_word_region")
    ap.add_argument("--offline", action="store_true", help="never download models (as OCRFLOW_OFFLINE=1)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from ..cli import DET_FLAGS, LIMIT_FLAGS, STAGE_FLAGS, STAGE_MODEL_FLAGS

    args = build_parser().parse_args(argv)
    logging.getLogger("ocrflow").setLevel(logging.INFO)  # the progress lines
    if args.offline:
        from ..models.store import OFFLINE_ENV

        os.environ[OFFLINE_ENV] = "1"  # set before Ray starts: a local Ray's workers inherit it
    settings = {k: getattr(args, k) for k in (*SETTINGS, *STAGE_FLAGS, *STAGE_MODEL_FLAGS, *DET_FLAGS, *LIMIT_FLAGS)
                if getattr(args, k) is not None}
    if args.return_word_box:
        settings["return_word_box"] = True
    try:
        from .runner import run

        summary = run(args.input, args.output, pipeline=args.pipeline, address=args.address, workers=args.workers,
                      cpus_per_worker=args.cpus_per_worker, format=args.format, device=args.device,
                      use_hpip=args.use_hpip, pages_per_block=args.pages_per_block, shard_pages=args.shard_pages,
                      shard_seconds=args.shard_seconds, log_every=args.log_every, **settings)
    except OcrflowError as exc:
        print(f"ocrflow batch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocrflow batch: interrupted; the pages written are kept, run the same command to go on",
              file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2))
    if summary["errors"]:
        print(f"ocrflow batch: {summary['errors']} input(s) or page(s) could not be read: see "
              f"{os.path.join(args.output, 'errors.' + args.format)}", file=sys.stderr)
    return 0 if summary["complete"] and not summary["errors"] else 1
