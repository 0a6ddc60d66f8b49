"""`ocrflow serve` (and PaddleX's `ocrflow --serve`): the HTTP service and web demo on uvicorn.

    ocrflow serve --pipeline OCR --host 127.0.0.1 --port 8080 --workers 2 --device cpu
    ocrflow serve --pipeline ./OCR.yaml --max_body_bytes 20M --url_allow 10.1.2.0/24

Settings: defaults < the pipeline YAML's `Serving:` section < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile

from ..errors import ConfigError, OcrflowError
from .settings import BYTE_FIELDS, FIELDS, ServeSettings, coerce, from_mapping, to_mapping

HELP = {
    "host": "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    "port": "port to listen on (default 8080)",
    "workers": "worker processes, each with its own pipeline (default 1)",
    "threads": "inference threads per process: OCR requests running at once (default 2)",
    "queue_size": "OCR requests that may wait for a thread; beyond threads + queue_size the answer is 503 "
    "with Retry-After (default 8)",
    "retry_after": "seconds in the Retry-After header of a 503 (default 2)",
    "request_timeout": "seconds one /ocr request may take, download included; then 504 and its work is "
    "stopped (default 60)",
    "body_timeout": "seconds to receive a request's body; then 408 (default 30)",
    "max_body_bytes": "largest request body, e.g. 64M; then 413 (default 64M)",
    "max_pixels": "most pixels of one decoded image or rendered PDF page; then 422 (default 40000000)",
    "max_pdf_pages": "PDF pages read, from the first (default 10)",
    "pdf_render_scale": "PDF pixels per point / 72 dpi (default: the pipeline's, 2.0)",
    "render_timeout": "seconds to render one PDF page; then 422 and the renderer process is killed (default 15)",
    "max_output_img_size": "WIDTHxHEIGHT the result picture is shrunk to fit (default 2000x2000)",
    "jpeg_quality": "JPEG quality of the result picture, 1-100 (default 90)",
    "url_connect_timeout": "seconds to connect to a URL's server; then 504 (default 5)",
    "url_read_timeout": "seconds a URL's server may stay silent; then 504 (default 15)",
    "url_timeout": "seconds for a whole download, redirects included; then 504 (default 30)",
    "url_max_bytes": "largest file fetched from a URL, e.g. 32M; then 413 (default 32M)",
    "url_max_redirects": "redirects followed, each checked again (default 3)",
    "url_allow": "CIDRs, IPs or host names (comma-separated, repeatable) that URLs may point to although they "
    "are loopback, private or link-local (default: none)",
    "demo": "serve the web demo at / (default on)",
    "docs": "serve /docs and /openapi.json (default on)",
    "log_level": "critical, error, warning, info or debug (default info)",
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ocrflow serve",
        description="Serve the OCR pipeline over HTTP: POST /ocr (PaddleX basic-serving API), GET /health, "
        "GET /metrics, /docs, and the web demo at /.",
        epilog="Every setting can also be given in a `Serving:` section of the pipeline YAML, e.g.\n"
        "  Serving:\n    max_body_bytes: 32M\n    url_allow: [10.1.2.0/24]\n"
        "Flags take precedence over the YAML.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pipeline", default="OCR", help="pipeline name (OCR) or path to a pipeline YAML (default OCR)")
    ap.add_argument("--device", help="cpu, gpu or gpu:N (default: the YAML's, else cpu)")
    ap.add_argument("--use_hpip", action="store_true",
                    help="high-performance inference backends, as for `ocrflow --use_hpip`")
    ap.add_argument("--cpu_threads", type=int, help="ONNX Runtime threads per model (default: all cores); with "
                    "several workers, cores / workers is a good value")
    for name, f in FIELDS.items():
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if f.type in ("bool", bool):
            ap.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=HELP[name])
        elif name == "url_allow":
            ap.add_argument(*flags, dest=name, action="append", default=None, metavar="CIDR|HOST", help=HELP[name])
        else:
            kind = {"int": int, "float": float, "float | None": float}.get(str(f.type), str)
            if name in BYTE_FIELDS:
                kind = str
            ap.add_argument(*flags, dest=name, type=kind, default=None, help=HELP[name])
    return ap


def resolve_settings(args: argparse.Namespace, serving_section) -> ServeSettings:
    settings = from_mapping(serving_section, ServeSettings(), where="Serving")
    flags = {}
    for name in FIELDS:
        value = getattr(args, name)
        if value is None:
            continue
        if name == "url_allow":
            value = [item for chunk in value for item in chunk.replace(",", " ").split()]
        flags[name] = coerce(name, value)
    return dataclasses.replace(settings, **flags)


def log_config(level: str) -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(json.dumps(LOGGING_CONFIG))
    config["formatters"]["ocrflow"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["ocrflow"] = {"class": "logging.StreamHandler", "formatter": "ocrflow",
                                     "stream": "ext://sys.stderr"}
    config["loggers"]["ocrflow"] = {"handlers": ["ocrflow"], "level": level.upper(), "propagate": False}
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ..config import load

        _, extra = load(args.pipeline)
        settings = resolve_settings(args, extra.get("Serving"))
    except ConfigError as exc:
        print(f"ocrflow serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        print(f"ocrflow serve: error: needs {exc.name!r}: pip install 'ocrflow[serve]'", file=sys.stderr)
        return 2
    pipeline_settings = {"process_tuning": True}  # the service owns its process
    if args.cpu_threads:
        pipeline_settings["cpu_threads"] = args.cpu_threads
    common = dict(host=settings.host, port=settings.port, log_config=log_config(settings.log_level),
                  log_level=settings.log_level, access_log=False, server_header=False)
    from ..pipeline import create_pipeline

    try:
        pipeline = create_pipeline(args.pipeline, device=args.device, use_hpip=args.use_hpip, **pipeline_settings)
    except OcrflowError as exc:
        print(f"ocrflow serve: error: {exc}", file=sys.stderr)
        return 1
    if settings.workers == 1:
        from .app import create_app

        print(f"ocrflow serve: http://{settings.host}:{settings.port}/ (docs at /docs)", file=sys.stderr)
        uvicorn.run(create_app(pipeline, settings), **common)
        return 0
    del pipeline  # built once to check the config and cache the models; each worker builds its own
    from .app import ENV_CONFIG

    os.environ[ENV_CONFIG] = json.dumps({"pipeline": args.pipeline, "device": args.device,
                                         "pipeline_settings": {**pipeline_settings, "use_hpip": args.use_hpip},
                                         "settings": to_mapping(settings)})
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics sums over the workers
        own_dir = tempfile.mkdtemp(prefix="ocrflow-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        print(f"ocrflow serve: http://{settings.host}:{settings.port}/ with {settings.workers} workers",
              file=sys.stderr)
        uvicorn.run("ocrflow.serving.app:app_from_env", factory=True, workers=settings.workers, **common)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":  # python -m ocrflow.serving.cli
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
