"""predict(timer=...) collects the seconds of every stage (what benchmarks/run_ocrflow.py reads)."""

from __future__ import annotations

import cv2
from conftest import DEMO

from ocrflow.timing import STAGES, StageTimer


def test_predict_times_every_stage(pipeline):
    timer = StageTimer()
    results = list(pipeline.predict([str(DEMO), cv2.imread(str(DEMO))], timer=timer, use_doc_orientation_classify=True,
                                    use_doc_unwarping=True, use_textline_orientation=True))
    assert len(results) == 2 and results[0]["rec_text"] == results[1]["rec_text"]
    assert set(timer.seconds) == set(STAGES)
    assert all(timer.seconds[s] > 0 for s in STAGES)
