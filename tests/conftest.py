"""Shared fixtures: one pipeline for the whole session (the default PP-OCRv4 mobile models)."""

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
DEMO = DATA / "general_ocr_002.png"  # the seed's boarding pass (a JPEG despite its name)


@pytest.fixture(scope="session")
def pipeline():
    from ocrflow import create_pipeline

    return create_pipeline("OCR", device="cpu")
