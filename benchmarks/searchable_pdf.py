"""Searchable PDFs: ocrflow against OCRmyPDF with Tesseract, side by side on the same scanned PDF.

    python benchmarks/searchable_pdf.py [--pages 20] [--data ../shared/data/funsd_test]

Makes a scanned PDF of the first --pages FUNSD forms (each image a page at 144 dpi), then times
each command on it, one after another:
  - ocrflow --output_format pdf [--use_hpip]         (this project's CLI, exact and fast path)
  - ocrmypdf --plugin ocrflow.ocrmypdf [--ocrflow-use-hpip]   (OCRmyPDF with ocrflow reading the pages)
  - ocrmypdf -l eng                                  (OCRmyPDF with Tesseract, Debian's tesseract-ocr)
and reports seconds per page (wall time of the whole command, model loading included; each command
first runs untimed on 2 pages, so that a first-time engine measurement is not timed) and the share
of FUNSD's labelled lines (entities) found in the PDF's text layer (pdftotext, page by page, ignoring
case, spaces and punctuation). Needs ghostscript, tesseract-ocr and poppler-utils.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def labels(data: Path, stems: list[str]) -> list[list[str]]:
    out = []
    for stem in stems:
        form = json.loads((data / "annotations" / f"{stem}.json").read_text())["form"]
        out.append([norm(e["text"]) for e in form if norm(e["text"])])
    return out


def found(pdf: Path, page_labels: list[list[str]]) -> tuple[int, int]:
    hit = total = 0
    for page, wanted in enumerate(page_labels, 1):
        text = norm(subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                                   capture_output=True, text=True, check=True).stdout)
        hit += sum(w in text for w in wanted)
        total += len(wanted)
    return hit, total


TINY = ["--det_model", "PP-OCRv6_tiny_det", "--rec_model", "PP-OCRv6_tiny_rec"]
TINY_YAML = "Global:\n  pipeline_name: OCR\nPipeline:\n  det_model: PP-OCRv6_tiny_det\n  rec_model: PP-OCRv6_tiny_rec\n"


def commands(scan: Path, tmp: Path, jobs: int) -> dict[str, tuple[list[str], Path]]:
    """name -> (command line, the PDF it writes) for each system, on the PDF `scan`."""
    tiny_yaml = tmp / "tiny.yaml"
    tiny_yaml.write_text(TINY_YAML)
    return {
        "ocrflow --output_format pdf": ([str(BIN / "ocrflow"), "--pipeline", "OCR", "--input", str(scan),
                                         "--save_path", str(tmp / "a"), "--output_format", "pdf", "--quiet"],
                                        tmp / "a" / "scan.pdf"),
        "ocrflow --output_format pdf --use_hpip": ([str(BIN / "ocrflow"), "--pipeline", "OCR", "--input",
                                                    str(scan), "--save_path", str(tmp / "h"), "--output_format",
                                                    "pdf", "--quiet", "--use_hpip"], tmp / "h" / "scan.pdf"),
        "... --use_hpip, PP-OCRv6_tiny": ([str(BIN / "ocrflow"), "--pipeline", "OCR", "--input", str(scan),
                                           "--save_path", str(tmp / "t"), "--output_format", "pdf", "--quiet",
                                           "--use_hpip", *TINY], tmp / "t" / "scan.pdf"),
        "ocrmypdf --plugin ocrflow.ocrmypdf": ([str(BIN / "ocrmypdf"), "--plugin", "ocrflow.ocrmypdf", "--jobs",
                                                str(jobs), "--output-type", "pdf", str(scan),
                                                str(tmp / "b.pdf")], tmp / "b.pdf"),
        "ocrmypdf --plugin ... --ocrflow-use-hpip": ([str(BIN / "ocrmypdf"), "--plugin", "ocrflow.ocrmypdf",
                                                      "--ocrflow-use-hpip", "--jobs", str(jobs),
                                                      "--output-type", "pdf", str(scan), str(tmp / "d.pdf")],
                                                     tmp / "d.pdf"),
        "... --ocrflow-use-hpip, PP-OCRv6_tiny": ([str(BIN / "ocrmypdf"), "--plugin", "ocrflow.ocrmypdf",
                                                    "--ocrflow-use-hpip", "--ocrflow-pipeline", str(tiny_yaml),
                                                    "--jobs", str(jobs), "--output-type", "pdf", str(scan),
                                                    str(tmp / "e.pdf")], tmp / "e.pdf"),
        "ocrmypdf -l eng (Tesseract)": ([str(BIN / "ocrmypdf"), "-l", "eng", "--jobs", str(jobs),
                                         "--output-type", "pdf", str(scan), str(tmp / "c.pdf")], tmp / "c.pdf"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd_test")
    ap.add_argument("--jobs", type=int, default=2, help="OCRmyPDF's --jobs")
    args = ap.parse_args(argv)
    images = sorted((args.data / "images").glob("*.png"))[: args.pages]
    page_labels = labels(args.data, [p.stem for p in images])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scan = tmp / "scan.pdf"
        pages = [Image.open(p).convert("RGB") for p in images]
        pages[0].save(scan, "PDF", save_all=True, append_images=pages[1:], resolution=144.0)
        # Untimed first, on 2 pages: a model's first load with a new thread count measures its
        # engines once (calibration.json), which the timed runs should not include.
        warm = tmp / "warm.pdf"
        pages[0].save(warm, "PDF", save_all=True, append_images=pages[1:2], resolution=144.0)
        (tmp / "warm").mkdir()
        for cmd, _ in commands(warm, tmp / "warm", args.jobs).values():
            subprocess.run(cmd, capture_output=True, text=True)
        runs = commands(scan, tmp, args.jobs)
        rows = {}
        for name, (cmd, out) in runs.items():
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{name}: failed ({proc.returncode}): {proc.stderr[-500:]}", file=sys.stderr)
                continue
            hit, total = found(out, page_labels)
            rows[name] = (seconds / len(images), hit, total)
    tess = rows.get("ocrmypdf -l eng (Tesseract)")
    print(f"{len(images)} FUNSD forms as a scanned PDF, {sum(len(x) for x in page_labels)} labelled lines")
    print(f"{'command':42} {'s/page':>7} {'lines found':>13} {'speed vs Tesseract':>19} {'lines vs Tesseract':>19}")
    for name, (spp, hit, total) in rows.items():
        speed = f"{tess[0] / spp:.2f}x" if tess else ""
        more = f"{hit / max(tess[1], 1):.2f}x" if tess else ""
        print(f"{name:42} {spp:7.2f} {hit:5d} ({100 * hit / total:4.1f}%) {speed:>19} {more:>19}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
