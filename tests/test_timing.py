"""predict(timer=...) collects the seconds of every stage (what benchmarks/run_ocrflow.py reads)."""

from __future__ import annotations

import threading

import cv2
from conftest import DEMO

from ocrflow import timing
from ocrflow.timing import STAGES, StageTimer


def test_predict_times_every_stage(pipeline):
    timer = StageTimer()
    results = list(pipeline.predict([str(DEMO), cv2.imread(str(DEMO))], timer=timer, use_doc_orientation_classify=True,
                                    use_doc_unwarping=True, use_textline_orientation=True))
    assert len(results) == 2 and results[0]["rec_text"] == results[1]["rec_text"]
    done = set(STAGES) - {"det_wait"}  # the exact path detects in this thread: no wait for one ahead
    assert set(timer.seconds) == done
    assert all(timer.seconds[s] > 0 for s in done)


def test_a_stage_timer_adds_up_across_threads(monkeypatch):
    # a clock of each thread's own that moves 1 s a reading: every stage takes exactly 1 s
    local = threading.local()

    def clock():
        local.now = getattr(local, "now", 0.0) + 1.0
        return local.now

    monkeypatch.setattr(timing.time, "perf_counter", clock)
    timer = StageTimer()

    def add():
        for _ in range(5000):
            with timer("rec_pre"):
                pass

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert timer.seconds == {"rec_pre": 20000.0}  # no addition lost between threads
