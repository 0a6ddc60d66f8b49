"""predict() over several pages detects the next page in a worker thread while it recognises the
current one: same results, same order, errors in their place, nothing left running."""

from __future__ import annotations

import threading

import cv2
import pytest
from conftest import DATA, DEMO

from ocrflow import create_pipeline
from ocrflow.errors import InputError


def images():
    return [cv2.imread(str(DEMO)), cv2.imread(str(DATA / "golden" / "imgs_en" / "img623.jpg")), cv2.imread(str(DEMO))]


def test_same_results_and_the_next_page_detected_in_a_worker(pipeline, monkeypatch):
    imgs = images()
    alone = [next(pipeline.predict(img)) for img in imgs]
    threads = []
    detect = pipeline.detect

    def recording_detect(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return detect(*args, **kwargs)

    monkeypatch.setattr(pipeline, "detect", recording_detect)
    together = list(pipeline.predict(imgs))
    assert [r["rec_text"] for r in together] == [r["rec_text"] for r in alone]
    assert [r["rec_score"] for r in together] == [r["rec_score"] for r in alone]
    assert [r["dt_polys"].tolist() for r in together] == [r["dt_polys"].tolist() for r in alone]
    # The first page is detected in the caller's thread, the next two in the worker.
    assert sorted(threads) == [threading.current_thread().name] + ["ocrflow-detect_0"] * 2


def test_a_single_image_starts_no_thread(pipeline, monkeypatch):
    threads = []
    detect = pipeline.detect
    monkeypatch.setattr(pipeline, "detect",
                        lambda *a, **k: threads.append(threading.current_thread()) or detect(*a, **k))
    next(pipeline.predict(cv2.imread(str(DEMO))))
    assert threads == [threading.current_thread()]


def test_errors_come_in_their_place(pipeline, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    imgs = images()
    events = []
    record = lambda label, exc: events.append(label)  # noqa: E731
    for res in pipeline.predict([imgs[0], str(bad), imgs[1], imgs[2]], on_error=record):
        events.append(len(res["rec_text"]))
    assert isinstance(events[0], int) and events[1] == str(bad) and all(isinstance(e, int) for e in events[2:])
    assert len(events) == 4
    gen = pipeline.predict([imgs[0], str(bad), imgs[1]], on_error="raise")
    assert next(gen)["rec_text"]
    with pytest.raises(InputError, match="bad.png"):
        next(gen)


def test_stopping_early_leaves_no_worker(pipeline):
    gen = pipeline.predict(images() * 2)
    next(gen)
    next(gen)
    gen.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("ocrflow-detect")]


def test_one_cpu_thread_means_no_worker(monkeypatch):
    pipeline = create_pipeline("OCR", cpu_threads=1)
    assert not pipeline.overlap
    threads = []
    detect = pipeline.detect
    monkeypatch.setattr(pipeline, "detect",
                        lambda *a, **k: threads.append(threading.current_thread()) or detect(*a, **k))
    list(pipeline.predict(images()))
    assert threads == [threading.current_thread()] * 3
