"""`ocrflow eval`: accuracy of a pipeline on labelled data, as a table and as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import OcrflowError
from .datasets import FORMATS, load
from .runner import TASKS, evaluate


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ocrflow eval",
        description="Measure detection (precision/recall/Hmean), recognition (accuracy, 1 - normalised edit "
        "distance) or end-to-end line accuracy, with PaddleOCR's metric definitions.",
        epilog="Examples:\n"
        "  ocrflow eval --task e2e --data ./sroie_dev\n"
        "  ocrflow eval --task det --data train_data/det/test.txt --format paddle-det\n"
        "  ocrflow eval --task rec --data train_data/rec/val.txt --rec_model ./my_rec/ --json rec.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--task", choices=TASKS, default="e2e", help="what to score (default e2e)")
    ap.add_argument("--data", required=True, help="a label file (PaddleOCR format) or a dataset folder")
    ap.add_argument("--format", choices=FORMATS, help="label format (default: detected)")
    ap.add_argument("--root", help="folder the image paths of a label file are relative to (default: its folder)")
    ap.add_argument("--pipeline", default="OCR", help="pipeline name or YAML (default OCR)")
    ap.add_argument("--device", help="cpu, gpu or gpu:N")
    ap.add_argument("--det_model", help="detection model name or local path")
    ap.add_argument("--rec_model", help="recognition model name or local path")
    ap.add_argument("--use_hpip", action="store_true", help="evaluate the high-performance path")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--errors", action="store_true", help="list the per-image errors")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return ap


def format_table(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items() if k != "errors"]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ..pipeline import create_pipeline

        samples = load(args.data, args.format, args.root)
        if args.limit:
            samples = samples[: args.limit]
        settings = {k: getattr(args, k) for k in ("det_model", "rec_model") if getattr(args, k)}
        pipeline = create_pipeline(args.pipeline, device=args.device, use_hpip=args.use_hpip, **settings)
        summary = evaluate(pipeline, samples, args.task, errors=args.errors)
    except OcrflowError as exc:
        print(f"ocrflow eval: error: {exc}", file=sys.stderr)
        return 1
    summary = {"data": str(args.data), **summary}
    print(format_table(summary))
    if args.errors:
        for item in summary["errors"]:
            print(json.dumps(item, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0
