"""Golden parity with the official stack (PaddleOCR 3.7 / PaddleX 3.7 on Paddle Inference, CPU).

tests/data/golden/reference.jsonl holds what that stack returns for the images beside it (PP-OCRv4
mobile det + rec, 960/max, 0.3/0.6/1.5, rec batch 6, no score filter); see tests/data/README.md.
Boxes and texts must be identical; scores may differ slightly between inference engines.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, DEMO

GOLDEN = DATA / "golden"
KEYS = ["input_path", "page_index", "dt_polys", "dt_scores", "rec_text", "rec_score"]
SCORE_TOL = 1e-2


def _load() -> list[dict]:
    with open(GOLDEN / "reference.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


REFERENCE = _load()


def test_golden_set_is_complete():
    assert len(REFERENCE) >= 10
    for ref in REFERENCE:
        assert (GOLDEN / ref["path"]).is_file(), ref["path"]
        assert len(ref["dt_polys"]) == len(ref["rec_text"]) == len(ref["rec_score"])


@pytest.mark.parametrize("ref", REFERENCE, ids=[r["path"].removeprefix("../") for r in REFERENCE])
def test_matches_official_output(pipeline, ref):
    path = GOLDEN / ref["path"]
    results = list(pipeline.predict(str(path)))
    assert len(results) == 1
    res = results[0]
    assert list(res.keys()) == KEYS
    assert res["input_path"] == str(path)
    assert res["page_index"] is None

    polys = res["dt_polys"]
    assert isinstance(polys, np.ndarray)
    assert np.issubdtype(polys.dtype, np.integer)
    assert polys.shape == (len(ref["dt_polys"]), 4, 2)
    np.testing.assert_array_equal(polys, np.array(ref["dt_polys"], dtype=np.int64).reshape(-1, 4, 2))

    assert len(res["dt_scores"]) == len(polys)
    assert all(0.0 <= s <= 1.0 for s in res["dt_scores"])

    assert res["rec_text"] == ref["rec_text"]
    assert len(res["rec_score"]) == len(ref["rec_score"])
    for i, (got, want) in enumerate(zip(res["rec_score"], ref["rec_score"])):
        assert isinstance(got, float)
        assert got == pytest.approx(want, abs=SCORE_TOL), (i, ref["rec_text"][i])


def test_demo_boarding_pass(pipeline):
    res = next(pipeline.predict(str(DEMO)))
    assert len(res["dt_polys"]) == 32
    assert len(res["rec_text"]) == len(res["rec_score"]) == 32
    assert "登机牌" in res["rec_text"]
    assert "BOARDING" in res["rec_text"]
    # reading order: the title line comes before the flight number
    assert res["rec_text"].index("登机牌") < res["rec_text"].index("BOARDING") < res["rec_text"].index("MU2379")
