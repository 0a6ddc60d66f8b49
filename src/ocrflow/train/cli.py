"""`ocrflow train rec|det|export`: fine-tune PP-OCR recognition / detection and export the result."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..errors import OcrflowError

EPILOG = """examples:
  ocrflow train rec --data ./sroie_train --val_data ./sroie_val --output ./out/rec --epochs 10
  ocrflow train det --data train_data/det/train.txt --val_data train_data/det/val.txt --output ./out/det
  ocrflow train rec --data train_data/rec/train.txt --resume ./out/rec/last.pt --output ./out/rec
  ocrflow train export --checkpoint ./out/rec/best.pt --output ./my_rec_model
then, in the pipeline YAML:  rec_model: ./out/rec/best_model   (det_model: ./out/det/best_model)

data: a PaddleOCR label file (det: 'path<TAB>[{"transcription", "points"}]', rec: 'path<TAB>text') or
an ICDAR 2015 / FUNSD / SROIE folder. Recognition can train from detection labels: each labelled
quad is cut out as the evaluation cuts it."""


def _add_common(ap: argparse.ArgumentParser, task: str) -> None:
    from ..eval.datasets import FORMATS

    rec = task == "rec"
    g = ap.add_argument_group("data")
    g.add_argument("--data", required=True, help="training labels: a label file or a dataset folder")
    g.add_argument("--format", choices=FORMATS, help="label format (default: detected)")
    g.add_argument("--root", help="folder the image paths of a label file are relative to")
    g.add_argument("--val_data", help="validation labels (default: the last --val_split of --data)")
    g.add_argument("--val_format", choices=FORMATS)
    g.add_argument("--val_root")
    g.add_argument("--val_split", type=float, default=0.1,
                   help="without --val_data: hold out this last fraction of the samples, in file order (default 0.1;"
                        " 0 = no validation, the last checkpoint is exported)")
    g.add_argument("--limit", type=int, help="only the first N training samples")
    g = ap.add_argument_group("model and output")
    g.add_argument("--model", help=f"starting model: a name or a local model dir (default PP-OCRv4_mobile_{task})")
    g.add_argument("--output", default=f"./output/{task}_finetune",
                   help="folder for last.pt, best.pt, train_log.jsonl and the exported best_model/ "
                        "(default %(default)s)")
    g.add_argument("--resume", help="continue from a checkpoint (last.pt) of an earlier run")
    g.add_argument("--no_export", action="store_true", help="do not export best_model/ at the end")
    g = ap.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=10, help="default %(default)s")
    g.add_argument("--batch_size", type=int, default=32 if rec else 4, help="default %(default)s")
    g.add_argument("--lr", type=float, default=3e-4 if rec else 2e-4,
                   help="peak learning rate (AdamW; default %(default)s)")
    g.add_argument("--warmup_epochs", type=float, default=1.0,
                   help="linear warm-up, then cosine decay (default %(default)s; at most 30%% of the run)")
    g.add_argument("--min_lr", type=float, default=0.0, help="learning rate at the end of the cosine (default 0)")
    g.add_argument("--weight_decay", type=float, default=1e-4, help="default %(default)s")
    g.add_argument("--clip_grad", type=float, default=10.0, help="gradient norm clip, 0 = off (default %(default)s)")
    g.add_argument("--eval_every", type=int, default=1, help="evaluate every N epochs (default %(default)s)")
    g.add_argument("--no_augment", action="store_true", help="train on the plain crops / pages")
    g.add_argument("--freeze", type=float, metavar="FRACTION",
                   help="freeze the first FRACTION of the layers (the early backbone): much faster on CPU, "
                        "less overfitting on small data (default: 0, train everything, for rec; 0.8, the "
                        "backbone, for det)")
    g.add_argument("--train_bn", action="store_true",
                   help="update batch-norm statistics too (default: frozen; needs large batches)")
    if not rec:
        g.add_argument("--crop_size", type=int, default=640,
                       help="square training crops, a multiple of 32 (default 640)")
        g.add_argument("--scale_range", type=float, nargs=2, default=(0.7, 1.4), metavar=("LO", "HI"),
                       help="random scale around the pipeline's own resize (default 0.7 1.4)")
        g.add_argument("--shrink_ratio", type=float, default=0.5,
                       help="DB label shrink ratio r, D = A (1 - r^2) / L (default 0.5: what the shipped PP-OCRv4 "
                            "maps match; PaddleOCR grows it from 0.4 to 0.6 while training from scratch)")
        g.add_argument("--shrink_loss", choices=("dice", "bce"), default="dice",
                       help="loss on the probability map: dice (default; PaddleOCR's, what the shipped model was "
                            "trained with) or bce (balanced BCE with hard negative mining, the DB paper's: it "
                            "re-calibrates the shipped model's saturated maps and loses Hmean when fine-tuning)")
    g.add_argument("--seed", type=int, default=0)
    g = ap.add_argument_group("machine")
    g.add_argument("--device", default="cpu", help="cpu, gpu, gpu:N (cuda, cuda:N)")
    g.add_argument("--workers", type=int, default=0, help="data loading processes (default 0: in the main process)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON to FILE")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ocrflow train",
        description="Fine-tune the PP-OCR recognition (CTC) or detection (DB) model from the shipped weights, "
        "in PyTorch (pip install 'ocrflow[train]'), and export it as a model directory for the pipeline YAML.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{rec,det,export}")
    for task, text in (("rec", "fine-tune text recognition (CTC)"), ("det", "fine-tune text detection (DB loss)")):
        p = sub.add_parser(task, help=text, description=text, formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(p, task)
    p = sub.add_parser("export", help="export a checkpoint as an ONNX model directory",
                       description="Write inference.onnx + inference.yml (PaddleX form) from a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="best.pt or last.pt")
    p.add_argument("--output", required=True, help="the model directory to write")
    return ap


def _det_options(args: argparse.Namespace) -> dict:
    """The detection-only flags a det run was given (rec runs keep TrainConfig's defaults)."""
    out = {k: getattr(args, k) for k in ("crop_size", "shrink_ratio", "shrink_loss") if hasattr(args, k)}
    if hasattr(args, "scale_range"):
        out["scale_range"] = tuple(args.scale_range)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("ocrflow").setLevel(logging.INFO if not getattr(args, "quiet", False) else logging.WARNING)
    try:
        from . import trainer
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "onnx"):
            print(f"ocrflow train: error: needs the package {exc.name!r}: install PyTorch (the build for your "
                  "machine) and then pip install 'ocrflow[train]'", file=sys.stderr)
            return 2
        raise
    try:
        if args.command == "export":
            out, diff = trainer.export_checkpoint(args.checkpoint, args.output)
            print(f"exported {args.checkpoint} to {out} (ONNX vs torch max abs diff {diff:.2e})")
            return 0
        cfg = trainer.TrainConfig(
            task=args.command, data=args.data, format=args.format, root=args.root, val_data=args.val_data,
            val_format=args.val_format, val_root=args.val_root, val_split=args.val_split, model=args.model,
            output=args.output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            warmup_epochs=args.warmup_epochs, min_lr=args.min_lr, weight_decay=args.weight_decay,
            clip_grad=args.clip_grad, eval_every=args.eval_every,
            freeze=args.freeze, train_bn=args.train_bn, augment=not args.no_augment,
            **_det_options(args), seed=args.seed, resume=args.resume, device=args.device, workers=args.workers,
            threads=args.threads,
            limit=args.limit, export=not args.no_export, progress=not args.quiet)
        result = trainer.Trainer(cfg).fit()
    except (OcrflowError, FileNotFoundError) as exc:
        print(f"ocrflow train: error: {exc}", file=sys.stderr)
        return 1
    metric = result["metric"]
    if result["best"] is None:
        best = "n/a (no validation data)"
    else:
        best = f"{result['best']:.4f} (epoch {result['best_epoch']})"
    print(f"{args.command}: {result['epochs']} epochs, {result['steps']} steps in {result['seconds']:.0f} s; "
          f"best {metric} {best}")
    if "model_dir" in result:
        print(f"model: {result['model_dir']}  (use it as {args.command}_model: in the pipeline YAML)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0
