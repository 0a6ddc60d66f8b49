"""ocrflow as OCRmyPDF's OCR engine: `ocrmypdf --plugin ocrflow.ocrmypdf in.pdf out.pdf`.

OCRmyPDF (17 or later: `pip install 'ocrflow[pdf]' ocrmypdf`, which also needs Ghostscript, and
Tesseract for its own checks) keeps doing what it does (rasterising, deskew, PDF/A, optimisation,
the text layer); every page image it rasterises is read by the PP-OCR pipeline instead of Tesseract.
Words and their boxes come from `return_word_box`. OCRmyPDF runs pages in parallel (`--jobs`), in
threads by default: they share one pipeline per process, loaded once, whose models run each page
on the process's cores divided by the jobs.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np
from ocrmypdf import hookimpl
from ocrmypdf.models.ocr_element import BoundingBox, OcrClass, OcrElement
from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence
from PIL import Image
from pydantic import BaseModel

from . import __version__

ENGINE = "ocrflow"
_pipeline = None
_lock = threading.Lock()


class OcrflowOptions(BaseModel):
    """`--ocrflow-pipeline` (a pipeline name or YAML) and `--ocrflow-use-hpip`."""

    pipeline: str = "OCR"
    use_hpip: bool = False


@hookimpl
def register_options():
    return {"ocrflow": OcrflowOptions}


@hookimpl
def add_options(parser):
    group = parser.add_argument_group("ocrflow", "PP-OCR through ocrflow (--plugin ocrflow.ocrmypdf)")
    group.add_argument("--ocrflow-pipeline", dest="ocrflow_pipeline", default="OCR", metavar="NAME|YAML",
                       help="the ocrflow pipeline: OCR (default) or a pipeline YAML")
    group.add_argument("--ocrflow-use-hpip", dest="ocrflow_use_hpip", action="store_true",
                       help="ocrflow's fast path (use_hpip)")


def _get_pipeline(options):
    """One pipeline per process, shared by OCRmyPDF's page threads; each inference on cores / jobs threads."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            from .pipeline import create_pipeline

            settings = getattr(options, "ocrflow", None) or OcrflowOptions()
            jobs = max(1, int(getattr(options, "jobs", None) or os.cpu_count() or 1))
            _pipeline = create_pipeline(settings.pipeline, use_hpip=settings.use_hpip,
                                        cpu_threads=max(1, (os.cpu_count() or 1) // jobs), return_word_box=True)
        return _pipeline


def _box(points) -> BoundingBox:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return BoundingBox(left=float(x0), top=float(y0), right=float(x1), bottom=float(y1))


def page_element(result, dpi: float, page_number: int) -> OcrElement:
    """An OCRResult as OCRmyPDF's page tree: lines (with their angle) of words."""
    h, w = result.input_img.shape[:2]
    page = OcrElement(ocr_class=OcrClass.PAGE, bbox=BoundingBox(left=0, top=0, right=w, bottom=h), dpi=dpi,
                      page_number=page_number)
    from .export import words_of

    for i, (poly, score) in enumerate(zip(result["dt_polys"], result["rec_score"])):
        quad = np.asarray(poly, np.float64).reshape(4, 2)
        dx, dy = quad[1] - quad[0]
        angle = -math.degrees(math.atan2(dy, dx))  # counter-clockwise, as hOCR's textangle
        line = OcrElement(ocr_class=OcrClass.LINE, bbox=_box(quad), confidence=float(score),
                          textangle=round(angle, 2) if abs(angle) >= 0.5 else None)
        for word, word_quad in words_of(result, i):
            line.children.append(OcrElement(ocr_class=OcrClass.WORD, bbox=_box(word_quad), text=word,
                                            confidence=float(score)))
        if line.children:
            page.children.append(line)
    return page


class OcrflowEngine(OcrEngine):
    """PP-OCR (the ocrflow pipeline) behind OCRmyPDF's OCR engine interface."""

    @staticmethod
    def version() -> str:
        return __version__

    @staticmethod
    def creator_tag(options) -> str:
        return f"ocrflow {__version__} (PP-OCR)"

    def __str__(self) -> str:
        return f"ocrflow {__version__} (PP-OCR)"

    @staticmethod
    def languages(options) -> set[str]:
        return {"eng", "chi_sim", "chi_tra"}  # PP-OCRv4's dictionary: Chinese, English, digits

    @staticmethod
    def get_orientation(input_file: Path, options) -> OrientationConfidence:
        return OrientationConfidence(angle=0, confidence=0.0)

    @staticmethod
    def supports_generate_ocr() -> bool:
        return True

    @staticmethod
    def _read(input_file: Path, options):
        with Image.open(input_file) as im:
            dpi = im.info.get("dpi", (300, 300))
        (result,) = _get_pipeline(options).predict(str(input_file))
        return result, float(dpi[0] if isinstance(dpi, tuple) else dpi)

    @staticmethod
    def generate_ocr(input_file: Path, options, page_number: int = 0) -> tuple[OcrElement, str]:
        result, dpi = OcrflowEngine._read(input_file, options)
        return page_element(result, dpi, page_number), result.to_txt()

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options) -> None:
        result, _ = OcrflowEngine._read(input_file, options)
        Path(output_hocr).write_text(result.to_hocr(), encoding="utf-8")
        Path(output_text).write_text(result.to_txt(), encoding="utf-8")

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options) -> None:
        raise NotImplementedError("ocrflow gives OCRmyPDF its words (generate_ocr): use the default "
                                  "--pdf-renderer auto (fpdf2), not sandwich")


@hookimpl
def get_ocr_engine(options=None):
    """OCRmyPDF asks the plugins given last first: with --plugin ocrflow.ocrmypdf, ocrflow reads the
    pages unless --ocr-engine names another engine."""
    engine = getattr(options, "ocr_engine", "auto") if options is not None else "auto"
    if engine not in ("auto", ENGINE):
        return None
    return OcrflowEngine()
