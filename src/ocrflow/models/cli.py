"""`ocrflow models`: list, inspect, fetch, locate and remove models.

    ocrflow models list [--task det|rec|cls] [--json]
    ocrflow models info NAME|DIR [--json]
    ocrflow models fetch NAME... | --pipeline NAME|YAML | --all [--source auto|wheel|archive] [--no-progress]
    ocrflow models path NAME|DIR
    ocrflow models remove NAME|DIR... [--forget-hash]
    ocrflow models calibration [--json] [--clear]
    --offline (anywhere; or OCRFLOW_OFFLINE=1): no network at all
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from ..errors import OcrflowError
from . import store
from .registry import (
    EVAL_CHALLENGE_A,
    EVAL_CHALLENGE_B,
    EVAL_PPOCR,
    HARDWARE,
    MODELS,
    SEED_MODELS,
    TASKS,
    ModelSpec,
)

EVAL_SETS = {EVAL_PPOCR: 1, EVAL_CHALLENGE_A: 2, EVAL_CHALLENGE_B: 3}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--offline", action="store_true", default=argparse.SUPPRESS,
                        help=f"forbid any network access (same as {store.OFFLINE_ENV}=1)")
    ap = argparse.ArgumentParser(
        prog="ocrflow models", parents=[common],
        description="The models ocrflow knows by name (the seed's tables and a few more), and the local cache.",
        epilog=f"Cache: {store.home()} (OCRFLOW_HOME moves it). Behind a firewall set {store.MIRROR_ENV} to a "
               "base URL or folder holding the official archives (e.g. PP-OCRv4_server_det_infer.tar). "
               "Paddle archives are converted to ONNX with paddle2onnx: pip install 'ocrflow[convert]'.",
    )
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = sub.add_parser("list", parents=[common], help="the models with the seed's figures, and which are cached")
    p.add_argument("--task", choices=sorted(TASKS), help="only models of this task")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("info", parents=[common], help="everything about one model (or a local model folder)")
    p.add_argument("name", metavar="NAME|DIR")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("fetch", parents=[common], help="download (and convert) models into the cache")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--pipeline", metavar="NAME|YAML",
                   help="the models this pipeline runs: its detection and recognition pair and the model of "
                        "each stage it switches on (e.g. OCRv6), to copy the cache to an offline machine")
    p.add_argument("--all", action="store_true", help="every model of the seed's tables")
    p.add_argument("--source", choices=store.SOURCES, default="auto",
                   help="auto: wheels first, then the official archive (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("path", parents=[common], help="print the ONNX file a model name or folder resolves to")
    p.add_argument("name", metavar="NAME|DIR")
    p = sub.add_parser("remove", parents=[common], help="delete cached models (or a folder's converted copy)")
    p.add_argument("names", nargs="+", metavar="NAME|DIR")
    p.add_argument("--forget-hash", action="store_true",
                   help="also forget the archive hash recorded on the first fetch (to accept a changed archive)")
    p = sub.add_parser("calibration", parents=[common],
                       help="the backend and precision measured per model on this machine (use_hpip, backend auto)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--clear", action="store_true", help="forget them: measured again at the next load")
    return ap


@contextlib.contextmanager
def _offline(on: bool):
    if not on:
        yield
        return
    old = os.environ.get(store.OFFLINE_ENV)
    os.environ[store.OFFLINE_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(store.OFFLINE_ENV, None)
        else:
            os.environ[store.OFFLINE_ENV] = old


def _fmt(value: float | None, acc: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if acc else f"{value:g}"


def _sources(spec: ModelSpec) -> list[str]:
    out = []
    if spec.sources:
        out.append("wheel")
    if spec.archive:
        out.append("archive" if spec.archive.paddle_format == "pdmodel" else "archive (PIR)")
    return out


def _row(spec: ModelSpec) -> dict:
    f = spec.figures
    return {
        "name": spec.name, "task": spec.task, "family": spec.family, "default": spec.default,
        "in_seed": spec.in_seed, "metric": f.metric if f else None, "value": f.value if f else None,
        "gpu_ms": f.gpu_ms if f else None, "cpu_ms": f.cpu_ms if f else None,
        "size_mb": f.size_mb if f else None, "eval_set": f.eval_set if f else None,
        "licence": spec.licence, "sources": _sources(spec), "cached": store.is_cached(spec),
    }


def cmd_list(args) -> int:
    specs = [s for s in MODELS.values() if not args.task or s.task == args.task]
    rows = [_row(s) for s in specs]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    header = ["name", "task", "accuracy %", "GPU ms", "CPU ms", "size MB", "cached", "sources"]
    table = []
    for spec, row in zip(specs, rows):
        mark = " *" if spec.default else ""
        acc = "-"
        if spec.figures:
            acc = f"{_fmt(row['value'], True)} {'Hmean' if row['metric'] == 'Hmean' else 'acc'} " \
                  f"[{EVAL_SETS.get(row['eval_set'], '?')}]"
        table.append([spec.name + mark, spec.task, acc, _fmt(row["gpu_ms"]), _fmt(row["cpu_ms"]),
                      _fmt(row["size_mb"]), "yes" if row["cached"] else "-", " + ".join(row["sources"])])
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    right = {2, 3, 4, 5}
    for r in [header, *table]:
        print("  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    print()
    print("* the pipeline's default. Figures are the seed's (PaddleX 3.0-beta tables); '-': not in the seed.")
    print(f"Timings: {HARDWARE}")
    for text, n in EVAL_SETS.items():
        print(f"[{n}] evaluation set: {text}")
    print(f"Cache: {store.home()}   fetch: ocrflow models fetch NAME   details: ocrflow models info NAME")
    return 0


def _archive_facts(spec: ModelSpec) -> dict | None:
    if spec.archive is None:
        return None
    record = store.archive_records().get(spec.archive.filename)
    return {
        "url": spec.archive.url, "fetch_url": store.archive_url(spec), "format": spec.archive.paddle_format,
        "published_sha256": spec.archive.sha256,
        "recorded_sha256": record.get("sha256") if record else None,
        "recorded": record.get("fetched") if record else None,
    }


def _local_info(path: Path, as_json: bool) -> int:
    files = store._local(path, None)
    facts = {"name": files.name, "onnx": str(files.onnx), "dictionary": len(files.chars) if files.chars else None,
             "settings": dict(files.settings)}
    if as_json:
        print(json.dumps(facts, indent=2, ensure_ascii=False, default=list))
        return 0
    print(f"{files.name}  (local model folder {path})")
    print(f"  ONNX file:  {files.onnx}")
    if files.chars:
        print(f"  dictionary: {len(files.chars)} characters")
    for key, value in files.settings.items():
        print(f"  {key}: {value}")
    return 0


def cmd_info(args) -> int:
    path = Path(args.name).expanduser()
    if args.name not in MODELS and path.exists():
        return _local_info(path, args.json)
    spec = MODELS.get(args.name)
    if spec is None:
        raise OcrflowError(f"unknown model {args.name!r}; `ocrflow models list` shows the known ones")
    facts = _row(spec)
    facts.update(description=spec.description, pretrained_url=spec.pretrained_url, hardware=HARDWARE,
                 archive=_archive_facts(spec), cache=str(store.model_dir(spec.name)),
                 wheels=[{"package": s.package, "version": s.version, "wheel_sha256": s.wheel_sha256,
                          "member": s.member, "member_sha256": s.member_sha256}
                         for s in (*spec.sources, *(x for x in (spec.dict_source, spec.yml_source) if x))])
    source_json = store.model_dir(spec.name) / "source.json"
    if source_json.is_file():
        facts["fetched_from"] = json.loads(source_json.read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(facts, indent=2, ensure_ascii=False))
        return 0
    where = "in the seed's tables" if spec.in_seed else "not in the seed's tables"
    print(f"{spec.name}  ({TASKS[spec.task]}, {spec.family}; {where}{'; the default' if spec.default else ''})")
    print(f"  description: {spec.description}")
    print(f"  licence:     {spec.licence}")
    if spec.figures:
        f = spec.figures
        label = "detection Hmean" if f.metric == "Hmean" else "recognition avg accuracy"
        print(f"  {label}: {_fmt(f.value, True)} %")
        print(f"    evaluation set: {f.eval_set}")
        print(f"  GPU time: {_fmt(f.gpu_ms)} ms   CPU time: {_fmt(f.cpu_ms)} ms   size: {_fmt(f.size_mb)} MB")
        print(f"    {HARDWARE}")
    print("  sources (tried in this order):")
    n = 0
    for w in facts["wheels"][: len(spec.sources)]:
        n += 1
        print(f"    {n}. wheel {w['package']}=={w['version']} (sha256 {w['wheel_sha256']}), used as data:")
        print(f"       {w['member']} (sha256 {w['member_sha256']})")
        for label, extra in (("dictionary", spec.dict_source), ("inference.yml", spec.yml_source)):
            if extra:
                print(f"       {label}: {extra.member} (sha256 {extra.member_sha256})")
    arch = facts["archive"]
    if arch:
        n += 1
        print(f"    {n}. official Paddle archive{' (PIR format)' if arch['format'] == 'pir' else ''}: {arch['url']}")
        if arch["fetch_url"] != arch["url"]:
            print(f"       fetched from the mirror: {arch['fetch_url']}")
        if arch["published_sha256"]:
            print(f"       sha256 (published): {arch['published_sha256']}")
        elif arch["recorded_sha256"]:
            print(f"       sha256 (recorded on first fetch, {arch['recorded']}): {arch['recorded_sha256']}")
        else:
            print("       sha256: none published; recorded on the first fetch")
    if spec.pretrained_url:
        print(f"  trained weights (for fine-tuning): {spec.pretrained_url}")
    if facts["cached"]:
        print(f"  cached: {store.model_dir(spec.name) / 'inference.onnx'}")
        if "fetched_from" in facts:
            src = facts["fetched_from"]
            print(f"    from {src.get('url')} ({src.get('fetched')}; {src.get('converted_with') or 'no conversion'})")
    else:
        print(f"  cached: no (ocrflow models fetch {spec.name})")
    return 0


def pipeline_models(pipeline: str) -> list[str]:
    """The models a pipeline (name or YAML) runs by name: det, rec and each stage it switches on.
    A setting that is a local folder or file is left out: there is nothing to fetch."""
    from .. import config as cfg
    from ..pipeline import OCRPipeline

    conf, _ = cfg.load(pipeline)
    names = [conf.det_model, conf.rec_model]
    names += [getattr(conf, setting) for switch, setting, _ in OCRPipeline.OPTIONAL_STAGES.values()
              if getattr(conf, switch)]
    return [name for name in dict.fromkeys(names) if name in MODELS or not Path(name).expanduser().exists()]


def cmd_fetch(args) -> int:
    names = list(SEED_MODELS) if args.all else list(args.names)
    if args.pipeline:
        names += [name for name in pipeline_models(args.pipeline) if name not in names]
    if not names:
        raise OcrflowError("name the models to fetch (ocrflow models list), or pass --pipeline NAME or --all")
    failed = 0
    for name in names:
        try:
            files = store.fetch(name, source=args.source, progress=False if args.no_progress else None)
        except OcrflowError as exc:
            failed += 1
            print(f"ocrflow models: error: {exc}", file=sys.stderr)
            continue
        print(f"{name}: {files.onnx}")
    return 1 if failed else 0


def cmd_path(args) -> int:
    spec = MODELS.get(args.name)
    if spec is not None:
        if not store.is_cached(spec):
            raise OcrflowError(f"model {spec.name!r} is not cached (it would be at {store.model_dir(spec.name)}); "
                               f"run: ocrflow models fetch {spec.name}")
        print(store.model_dir(spec.name) / "inference.onnx")
        return 0
    path = Path(args.name).expanduser()
    if not path.exists():
        raise OcrflowError(f"{args.name!r} is neither a known model nor an existing path")
    print(store._local(path, None).onnx)
    return 0


def cmd_remove(args) -> int:
    status = 0
    for name in args.names:
        if name in MODELS:
            removed = store.remove(name, forget_hash=args.forget_hash)
            if removed:
                for path in removed:
                    print(f"removed {path}" if path.name != store.RECORDS else f"forgot the recorded hash of {name}")
            else:
                print(f"{name}: nothing cached")
            continue
        path = Path(name).expanduser()
        converted = store.converted_path(path) if path.is_dir() else None
        if converted is None:
            print(f"ocrflow models: error: {name!r} is neither a known model nor a Paddle-format model folder",
                  file=sys.stderr)
            status = 1
        elif converted.parent.exists():
            import shutil

            shutil.rmtree(converted.parent)
            print(f"removed {converted.parent} (the ONNX conversion of {path})")
        else:
            print(f"{name}: no converted copy cached")
    return status


def cmd_calibration(args) -> int:
    from ..engine import calibrate

    if args.clear:
        print(f"cleared {calibrate.cache_path()}" if calibrate.clear() else "no choices on record")
        return 0
    rows = calibrate.cached()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no choices on record yet ({calibrate.cache_path()}): each model is measured on its first load")
        return 0
    for row in rows:
        figures = ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(row["ms"].items(), key=lambda kv: kv[1]))
        chosen = calibrate.Candidate(row["backend"], row["precision"], row["streams"])
        print(f"{row['model'] or '?':24} {row['task']:4} threads={row['threads']}  {str(chosen):26}  {figures}")
    print(f"\nCPU: {rows[0]['cpu']}. Cache: {calibrate.cache_path()} (--clear to measure again).")
    return 0


VERBS = {"list": cmd_list, "info": cmd_info, "fetch": cmd_fetch, "path": cmd_path, "remove": cmd_remove,
         "calibration": cmd_calibration}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with _offline(getattr(args, "offline", False)):
            return VERBS[args.verb](args)
    except OcrflowError as exc:
        print(f"ocrflow models: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
