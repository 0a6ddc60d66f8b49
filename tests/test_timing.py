"""predict(timer=...) collects the seconds of every stage (what benchmarks/run_ocrflow.py reads)."""

from __future__ import annotations

import threading

import cv2
from conftest import DEMO

from ocrflow import timing
from ocrflow.timing import MODELS, STAGES, StageTimer


def test_predict_times_every_stage(pipeline):
    timer = StageTimer()
    results = list(pipeline.predict([str(DEMO), cv2.imread(str(DEMO))], timer=timer, use_doc_orientation_classify=True,
                                    use_doc_unwarping=True, use_textline_orientation=True))
    assert len(results) == 2 and results[0]["rec_text"] == results[1]["rec_text"]
    done = set(STAGES) - {"det_wait"}  # the exact path detects in this thread: no wait for one ahead
    assert set(timer.seconds) == done | {MODELS}
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


def test_the_models_time_counts_overlapping_model_stages_once(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    timer = StageTimer()
    with timer("det_model"):  # 0-4 s, and recognition 1-3 s beside it (as from another thread)
        now[0] = 1.0
        with timer("rec_model"):
            now[0] = 3.0
        now[0] = 4.0
    with timer("det_post"):  # no model: 4-5 s
        now[0] = 5.0
    with timer("rec_model"):  # 5-7 s
        now[0] = 7.0
    assert timer.seconds == {"det_model": 4.0, "rec_model": 4.0, "det_post": 1.0, MODELS: 6.0}

