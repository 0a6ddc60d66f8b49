"""ocrflow as OCRmyPDF's OCR engine (`ocrmypdf --plugin ocrflow.ocrmypdf`), on a scanned 3-page PDF."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO
from PIL import Image

pytest.importorskip("ocrmypdf", reason="OCRmyPDF is not installed: pip install -e '.[test]'")
OCRMYPDF = Path(sys.executable).parent / "ocrmypdf"
missing = [p for p in ("gs", "tesseract", "pdftotext") if shutil.which(p) is None]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"OCRmyPDF needs {', '.join(missing)} (apt-get install "
                                "ghostscript tesseract-ocr poppler-utils)")


def _ocrmypdf(*args: str) -> subprocess.CompletedProcess:
    """ocrmypdf with these arguments; a run that hangs fails with what it printed. (OCRmyPDF's page
    threads once hung in OpenVINO's first inference: test_hpip.py's deadlock test.)"""
    try:
        return subprocess.run([str(OCRMYPDF), *args], capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as exc:
        printed = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"ocrmypdf hung for 150 s; it had printed: {(printed or '')[-2000:]}")


def test_ocrmypdf_plugin_reads_every_page(tmp_path):
    image = Image.open(DEMO).convert("RGB")
    source = tmp_path / "scan.pdf"
    image.save(source, "PDF", save_all=True, append_images=[image, image], resolution=144.0)
    out = tmp_path / "out.pdf"
    proc = _ocrmypdf("--plugin", "ocrflow.ocrmypdf", "--jobs", "2", str(source), str(out))
    assert proc.returncode == 0, proc.stderr
    import pikepdf

    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 3
        assert "ocrflow" in str(pdf.docinfo.get("/Creator"))  # read by ocrflow, not Tesseract
    for page in (1, 2, 3):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(out), "-"],
                              capture_output=True, text=True, check=True).stdout
        for line in ("BOARDING", "PASS", "登机牌", "ZHANGQIWEI", "TAIYUAN"):
            assert line in text, (page, line, text[:300])
