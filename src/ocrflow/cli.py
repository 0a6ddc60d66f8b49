"""Command line: the PaddleX CLI forms with `paddlex` replaced by `ocrflow`.

    ocrflow --pipeline OCR --input general_ocr_002.png --device cpu [--save_path ./output/]
    ocrflow --get_pipeline_config OCR [--save_path ./my_path]
    ocrflow --pipeline ./OCR.yaml --input ./images/
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from . import __version__
from .config import OCR_VERSIONS, PIPELINE_NAMES, bundled_yaml
from .errors import OcrflowError
from .export import FORMATS

DET_FLAGS = {
    "limit_side_len": (int, "detection: limit for the image side (default 960)"),
    "limit_type": (str, "detection: 'max' (shrink the long side to the limit), 'min' or 'resize_long' (default max)"),
    "max_side_limit": (int, "detection: hard cap on the resized long side (default 4000)"),
    "thresh": (float, "detection: pixel probability threshold of the DB map (default 0.3)"),
    "box_thresh": (float, "detection: minimum mean probability of a box (default 0.6)"),
    "unclip_ratio": (float, "detection: how far boxes are grown around the text (default 1.5)"),
}

# PaddleX 3.x's stages (ocrflow.stages), PaddleOCR's flag names: `--use_textline_orientation` or `... True/False`.
STAGE_FLAGS = {
    "use_doc_orientation_classify": "turn pages upright first (0/90/180/270; PP-LCNet_x1_0_doc_ori)",
    "use_doc_unwarping": "flatten photographed, curved pages first (UVDoc)",
    "use_textline_orientation": "turn upside-down text lines before recognition (0/180)",
    "textline_orientation_verify": "read the lines the line classifier may have wrong both ways, keep the better "
                                   "reading (default True; False: the classifier's rule alone)",
}
STAGE_MODEL_FLAGS = {
    "doc_orientation_classify_model": "page orientation model name or folder (default PP-LCNet_x1_0_doc_ori)",
    "doc_unwarping_model": "unwarping model name or folder (default UVDoc)",
    "textline_orientation_model": "text line orientation model name or folder (default ch_ppocr_mobile_v2.0_cls)",
}


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def add_stage_flags(ap: argparse.ArgumentParser) -> None:
    """--ocr_version and the stage flags (the main command and `ocrflow batch`)."""
    ap.add_argument("--ocr_version", choices=tuple(OCR_VERSIONS),
                    help="the det/rec pair of a PP-OCR version (PP-OCRv6: PP-OCRv6_small); --det_model / "
                    "--rec_model win over it")
    for name, text in STAGE_FLAGS.items():
        ap.add_argument(f"--{name}", type=_bool, nargs="?", const=True, metavar="BOOL", help=text)
    for name, text in STAGE_MODEL_FLAGS.items():
        ap.add_argument(f"--{name}", help=text)


# Input limits (limits.Limits; the same keys in the pipeline YAML).
LIMIT_FLAGS = {
    "max_pixels": (int, "most pixels of one image or rendered PDF page (default 100000000)"),
    "max_pages": (int, "most pages of one PDF; a longer PDF is skipped with an error (default 1000)"),
    "max_bytes": (int, "largest file, or body of a URL, read (default 209715200)"),
    "render_timeout": (float, "seconds to render one PDF page before it is stopped (default 15)"),
    "url_allow": (str, "hosts, .domain suffixes, IPs or CIDRs that URLs may point to although not public "
                       "(comma-separated); by default only public addresses are fetched"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ocrflow",
        description="General OCR (PP-OCR text detection + recognition) on images, folders, URLs and PDFs.",
        epilog="Examples:\n"
        "  ocrflow --pipeline OCR --input general_ocr_002.png --device cpu\n"
        "  ocrflow --pipeline OCRv6 --input scan_sideways.jpg      (PP-OCRv6, pages and lines turned right)\n"
        "  ocrflow --pipeline OCR --input ./scans/ --save_path ./output/\n"
        "  ocrflow --get_pipeline_config OCR --save_path ./my_path\n"
        "  ocrflow --pipeline ./my_path/OCR.yaml --input general_ocr_002.png\n"
        "Settings given here take precedence over the pipeline YAML.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.epilog += "\n\nSub-commands (ocrflow VERB --help):\n" + "\n".join(
        f"  {verb:14} {text}" for verb, (_, text) in VERBS.items()
    )
    ap.add_argument("--pipeline", help="pipeline name (OCR: the seed's; OCRv6: PP-OCRv6 with page and line "
                    "orientation) or path to a pipeline YAML")
    ap.add_argument("--input", help="image, PDF, folder or http(s) URL to read (default: the YAML's Global.input)")
    ap.add_argument("--device", help="cpu, gpu or gpu:N (default: the YAML's, else cpu); no silent CPU fall-back")
    ap.add_argument("--save_path", help="folder to write <name>.json and the <name> visualisation into; "
                    "with --get_pipeline_config, where to write OCR.yaml")
    ap.add_argument("--get_pipeline_config", metavar="NAME", help="write the pipeline's YAML config and exit")
    ap.add_argument("--use_hpip", action="store_true",
                    help="high-performance inference: each model on the backend and precision measured "
                    "fastest on this machine (once, cached), which may change a few characters; the choice is logged")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "openvino"),
                    help="inference backend of the exact path (default auto: on the CPU the faster f32 engine of "
                         "OpenVINO and ONNX Runtime, measured once per model where both are installed)")
    ap.add_argument("--det_model", help="detection model name, or a local .onnx file / model directory")
    ap.add_argument("--rec_model", help="recognition model name, or a local .onnx file / model directory")
    ap.add_argument("--rec_batch_size", type=int, help="text lines per recognition batch (default 6)")
    add_stage_flags(ap)
    ap.add_argument("--cpu_threads", type=int, help="threads per model on CPU (default: all cores)")
    ap.add_argument("--pdf_render_scale", type=float, help="PDF pixels per point / 72 dpi (default 2.0 = 144 dpi)")
    for name, (kind, text) in {**DET_FLAGS, **LIMIT_FLAGS}.items():
        ap.add_argument(f"--{name}", type=kind, help=text)
    ap.add_argument("--output_format", default="json,img",
                    help="what --save_path gets, a comma list of json,img (per page), pdf (searchable PDF), hocr, "
                    "alto, txt (one file per input, all its pages) (default json,img)")
    ap.add_argument("--return_word_box", action="store_true",
                    help="add text_word / text_word_region (each word and its box) to the results; on by itself "
                    "for pdf, hocr and alto")
    ap.add_argument("--offline", action="store_true", help="never download models (as OCRFLOW_OFFLINE=1)")
    ap.add_argument("--quiet", action="store_true", help="do not print the results")
    ap.add_argument("--version", action="version", version=f"ocrflow {__version__}")
    return ap


def write_pipeline_config(name: str, save_path: str | None, device: str | None) -> Path:
    if name not in PIPELINE_NAMES:
        raise OcrflowError(f"unknown pipeline {name!r}; ocrflow has: {', '.join(PIPELINE_NAMES)}")
    text = bundled_yaml(name)
    if device:
        text = re.sub(r"^(\s*(?:det|rec)_device:).*$", rf"\1 {device}", text, flags=re.M)
    target = Path(save_path or ".")
    if target.suffix.lower() not in (".yaml", ".yml"):
        target = target / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def run_pipeline(args: argparse.Namespace) -> int:
    from .config import load
    from .pipeline import create_pipeline

    if args.use_hpip:
        logging.getLogger("ocrflow").setLevel(logging.INFO)
    if args.offline:
        from .models.store import OFFLINE_ENV

        os.environ[OFFLINE_ENV] = "1"
    settings = {k: getattr(args, k) for k in ("det_model", "rec_model", "rec_batch_size", "cpu_threads", "backend",
                                               "pdf_render_scale", "ocr_version", *STAGE_FLAGS, *STAGE_MODEL_FLAGS,
                                               *DET_FLAGS, *LIMIT_FLAGS)
                if getattr(args, k) is not None}
    settings["process_tuning"] = True  # a process of its own: heap trimming, small pages, oneDNN's kernel cache
    formats = [f.strip() for f in args.output_format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise OcrflowError(f"--output_format takes a comma list of {','.join(FORMATS)}, got {args.output_format!r}")
    if args.return_word_box or {"pdf", "hocr", "alto"} & set(formats):
        settings["return_word_box"] = True
    conf, _ = load(args.pipeline)
    source = args.input or conf.input
    if not source:
        raise OcrflowError("no --input given and the pipeline YAML has no Global.input")
    if args.save_path and Path(args.save_path).exists() and not Path(args.save_path).is_dir():
        raise OcrflowError(f"--save_path {args.save_path} is a file: give a folder to write the results into")
    pipeline = create_pipeline(args.pipeline, device=args.device, use_hpip=args.use_hpip, **settings)
    failures: list[str] = []
    count = 0
    # A page turned or unwarped by the stages has its boxes on the corrected page, not on the PDF's own
    # page: such documents are written from the page images.
    pages_changed = pipeline.config.use_doc_orientation_classify or pipeline.config.use_doc_unwarping
    documents = (Documents(args.save_path, formats, _input_files(source), keep_pdf_pages=not pages_changed)
                 if args.save_path else None)
    try:
        for res in pipeline.predict(source, on_error=lambda label, exc: failures.append(str(exc))):
            count += 1
            if not args.quiet:
                res.print()
            if documents:
                res.save_all(args.save_path, formats)
                documents.add(res)
    finally:
        if documents:
            documents.close()
    for message in failures:
        print(f"ocrflow: skipped {message}", file=sys.stderr)
    if failures:
        print(f"ocrflow: {count} result(s), {len(failures)} input(s) could not be read", file=sys.stderr)
        return 1
    return 0


class Documents:
    """--output_format's document formats: one InputWriter per input, closed when the next begins.
    No document is written over an input file or over another document of this run: a name that
    would be is given the input's suffix (a_png.pdf), then a number."""

    def __init__(self, folder: str, formats: list[str], inputs: set[Path], keep_pdf_pages: bool = True):
        self.folder, self.formats, self.inputs = Path(folder), formats, inputs
        self.keep_pdf_pages = keep_pdf_pages  # a PDF input's own pages, with the text layer added
        self.writer = None
        self.input = None
        self.written: set[Path] = set()

    def _name(self, stem: str, suffix: str) -> str:
        from .export import SUFFIXES

        kinds = [SUFFIXES[f] for f in self.formats if f in SUFFIXES]
        for n in range(1000):
            name = stem if n == 0 else f"{stem}_{suffix.lstrip('.')}" if n == 1 else f"{stem}_{suffix.lstrip('.')}_{n}"
            targets = {(self.folder / f"{name}{k}").resolve() for k in kinds}
            if not targets & (self.inputs | self.written):
                self.written |= targets
                return name
        raise OcrflowError(f"no free output name for {stem}{suffix} in {self.folder}")

    def add(self, res) -> None:
        from .errors import InputError
        from .export import SUFFIXES, InputWriter
        from .inputs import is_url, name_of

        if not SUFFIXES.keys() & set(self.formats):
            return
        path = res["input_path"]
        if self.writer is None or path != self.input or not res["page_index"]:  # a new input begins
            self.close()
            stem, suffix = name_of(path) if path else (res._name, "")
            name = self._name(stem, suffix)
            local_pdf = (self.keep_pdf_pages and res["page_index"] is not None and path and not is_url(path)
                         and Path(path).is_file())
            try:
                self.writer = InputWriter(self.folder, name, self.formats, path if local_pdf else None)
            except InputError as exc:  # a PDF pikepdf will not take: its pages as images instead
                print(f"ocrflow: {exc}; its pages go into {name}.pdf as images", file=sys.stderr)
                self.writer = InputWriter(self.folder, name, self.formats, None)
            self.input = path
        self.writer.add(res)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _input_files(source: str) -> set[Path]:
    """The local files a CLI input names (never to be written over)."""
    from .inputs import expand

    return {Path(src.value).resolve() for src in expand(source) if src.kind == "path"}


# Sub-commands, each in its own module with its own parser: `ocrflow VERB --help`.
VERBS = {
    "serve": ("ocrflow.serving.cli", "run the HTTP service (PaddleX basic-serving API) and web demo"),
    "eval": ("ocrflow.eval.cli", "measure detection / recognition / end-to-end accuracy on labelled data"),
    "check_dataset": ("ocrflow.eval.check", "validate a labelled dataset (files, polygons, characters)"),
    "models": ("ocrflow.models.cli", "list, inspect, fetch and remove models"),
    "train": ("ocrflow.train.cli", "fine-tune detection or recognition models"),
    "batch": ("ocrflow.batch.cli", "OCR an archive on a Ray cluster (or a local Ray), resumable, each page once"),
}


def run_verb(verb: str, argv: list[str]) -> int:
    import importlib

    module_name, _ = VERBS[verb]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("ocrflow"):
            print(f"ocrflow: error: '{verb}' is not available in this version", file=sys.stderr)
            return 2
        print(f"ocrflow: error: '{verb}' needs the package {exc.name!r}: "
              f"pip install 'ocrflow[{verb}]'", file=sys.stderr)
        return 2
    return module.main(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="ocrflow: %(levelname)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in VERBS:
        return run_verb(argv[0], argv[1:])
    if "--serve" in argv:  # PaddleX's form: ocrflow --serve --pipeline OCR [--host --port --device]
        return run_verb("serve", [a for a in argv if a != "--serve"])
    args = build_parser().parse_args(argv)
    try:
        if args.get_pipeline_config:
            target = write_pipeline_config(args.get_pipeline_config, args.save_path, args.device)
            print(f"The pipeline config has been saved to {target}")
            return 0
        if not args.pipeline:
            build_parser().print_usage(sys.stderr)
            print("ocrflow: error: --pipeline is required (e.g. --pipeline OCR)", file=sys.stderr)
            return 2
        return run_pipeline(args)
    except OcrflowError as exc:
        print(f"ocrflow: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except OSError as exc:  # a --save_path that cannot be written, a full disk, ...
        print(f"ocrflow: error: cannot write the results: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
