"""use_hpip: shape buckets, padded inputs, the engine settings it picks, and its answers on real images.

Speed is measured in benchmarks/speed.py, accuracy with `ocrflow eval` (docs/performance.md); here: the
fast path reads the same text as the exact one on the demo and golden images, bar a few characters.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import cv2
import numpy as np
import pytest
from conftest import DATA, DEMO
from rapidfuzz.distance import Levenshtein

from ocrflow import create_pipeline, det, rec, shapes
from ocrflow.engine import calibrate, hpip, load_model, parse_device
from ocrflow.errors import ConfigError, InputError
from ocrflow.models import resolve
from ocrflow.timing import StageTimer


def test_bucket_is_a_few_sizes_with_little_padding():
    sizes = {shapes.bucket(n) for n in range(1, 3201)}
    assert len(sizes) <= 40
    for n in range(1, 5000):
        b = shapes.bucket(n)
        assert b >= n and b % 32 == 0
        if n >= 256:
            assert b < n * 1.125
    assert shapes.bucket(960) == 960 and shapes.bucket(961) == 1024 and shapes.bucket(320) == 320
    assert [shapes.bucket(n) for n in (1, 32, 33, 300, 513)] == [32, 32, 64, 320, 576]


def test_padded_detection_input_is_the_exact_one_plus_zeros():
    image = np.random.default_rng(0).integers(0, 256, (736, 290, 3), dtype=np.uint8)
    params = det.DetParams()
    exact = det.preprocess(image, params)
    assert exact.shape[2:] == det.input_size(736, 290, params) == (736, 288)
    out = det.preprocess(image, params, round_size=shapes.bucket)
    assert out.shape == (1, 3, 768, 288) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, :736, :288], exact)
    assert not out[:, :, 736:].any()
    assert det.input_size(10, 20, params) == det.preprocess(np.zeros((10, 20, 3), np.uint8), params).shape[2:]
    with pytest.raises(ValueError, match="H x W x 3"):
        det.preprocess(np.zeros((40, 40), np.uint8), params)  # refused, not planes of the output left unset


def test_pad_batch_rounds_the_width():
    items = [np.ones((3, 48, 100), np.float32), np.ones((3, 48, 150), np.float32)]
    assert rec.pad_batch(items).shape == (2, 3, 48, 150)
    out = rec.pad_batch(items, shapes.bucket)
    assert out.shape == (2, 3, 48, 160)
    assert out[0, :, :, :100].all() and not out[0, :, :, 100:].any()
    # without the 320 px minimum, a short word is as wide as its ratio says
    assert rec.resize_norm(np.zeros((30, 45, 3), np.uint8), 48, rec.HPIP_MIN_WIDTH).shape == (3, 48, 72)
    assert rec.resize_norm(np.zeros((30, 45, 3), np.uint8), 48, 320).shape == (3, 48, 320)


def test_use_hpip_widens_onednn_kernel_cache_unless_set(monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "unset")  # so monkeypatch restores the original
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    hpip.widen_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(hpip.PRIMITIVE_CACHE) == "2048"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")  # the user's choice stands
    hpip.widen_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "512"


def test_without_process_tuning_the_log_says_once_what_it_would_change(monkeypatch, caplog):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "unset")
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    hpip.hint_process_tuning.cache_clear()
    with caplog.at_level(logging.INFO, logger="ocrflow"):
        hpip.hint_process_tuning()
        hpip.hint_process_tuning()  # once a process
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ
    [line] = [r.getMessage() for r in caplog.records if "kernel cache" in r.getMessage()]
    assert "process_tuning=True" in line and "ONEDNN_PRIMITIVE_CACHE_CAPACITY=2048" in line
    assert "NUMPY_MADVISE_HUGEPAGE=0" in line
    caplog.clear()
    hpip.hint_process_tuning.cache_clear()
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "4096")  # the user chose: nothing to say
    with caplog.at_level(logging.INFO, logger="ocrflow"):
        hpip.hint_process_tuning()
    assert not caplog.records


def test_openvino_settings_per_precision():
    path = resolve("PP-OCRv4_mobile_rec", "rec").onnx
    exact = load_model(path, "cpu", backend="openvino")
    assert exact.settings["CPU_RUNTIME_CACHE_CAPACITY"] == 16 and "SNIPPETS_MODE" not in exact.settings
    assert exact._compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    fast = load_model(path, "cpu", backend="openvino", precision="bf16", shape_cache=256)
    assert fast.settings["CPU_RUNTIME_CACHE_CAPACITY"] == 256
    assert fast.settings["SNIPPETS_MODE"] == "DISABLE" and fast.settings["INFERENCE_PRECISION_HINT"] == "bf16"


def test_openvino_with_a_thread_count_does_not_pin_threads_to_cores():
    # processes that share a machine by thread count (batch workers, OCRmyPDF jobs) must not all
    # be pinned to the first cores
    path = resolve("PP-OCRv4_mobile_rec", "rec").onnx
    shared = load_model(path, "cpu", threads=1, backend="openvino")
    assert shared._compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert shared._compiled.get_property("ENABLE_CPU_PINNING") is False
    assert "ENABLE_CPU_PINNING" not in load_model(path, "cpu", backend="openvino").settings


@pytest.fixture(scope="module")
def fast():
    return create_pipeline("OCR", use_hpip=True)


def test_use_hpip_changes_the_environment_only_with_process_tuning(monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "unset")  # so monkeypatch restores the original
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    create_pipeline("OCR", use_hpip=True)
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ
    tuned = create_pipeline("OCR", use_hpip=True, process_tuning=True)
    if any(c.backend == "openvino" for c in tuned.calibration.values()):
        assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "2048"


def _close(a: list[str], b: list[str]) -> float:
    """Share of characters the same: 1 - edit distance over the joined texts."""
    return 1 - Levenshtein.normalized_distance("\n".join(a), "\n".join(b))


@pytest.mark.parametrize("path", [DEMO, *sorted((DATA / "golden" / "imgs").glob("*.jpg"))[:6]],
                         ids=lambda p: p.name)
def test_fast_path_reads_what_the_exact_path_reads(pipeline, fast, path):
    (exact,) = list(pipeline.predict(str(path)))
    (quick,) = list(fast.predict(str(path)))
    assert len(quick["dt_polys"]) == pytest.approx(len(exact["dt_polys"]), abs=1)
    assert _close(quick["rec_text"], exact["rec_text"]) > 0.95
    # boxes are in the original image's pixels, not the padded input's
    h, w = fast.pages(str(path)).__next__()[1].image.shape[:2]
    if len(quick["dt_polys"]):
        assert quick["dt_polys"][..., 0].max() <= w and quick["dt_polys"][..., 1].max() <= h


def test_fast_path_logs_its_choice(caplog):
    with caplog.at_level(logging.INFO, logger="ocrflow"):
        fast = create_pipeline("OCR", use_hpip=True)
    choice = hpip.choose(parse_device("cpu"))
    [line] = [r.getMessage() for r in caplog.records if choice.reason in r.getMessage()]  # one profile, logged once
    assert all(f"{knob}=" in line for knob in hpip.KNOBS)
    assert "backend=measure" in line and "precision=measure" in line
    # then each model's measured choice, with the figures behind it
    for task in ("det", "rec"):
        chosen = fast.calibration[task]
        [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"use_hpip {task} model")]
        assert f"{chosen.backend} {chosen.precision}" in line
        # recognition also measures OpenVINO with two streams (on 2 threads or more)
        cands = calibrate.candidates(streams="measure" if task == "rec" and os.cpu_count() >= 2 else 1)
        assert calibrate.Candidate(chosen.backend, chosen.precision, chosen.streams) in cands
        assert set(chosen.ms) == {str(c) for c in cands} or len(cands) == 1
        assert (fast.det_model, fast.rec_model)[task == "rec"].streams == chosen.streams


def test_profile_knobs_can_be_overridden():
    fast = create_pipeline("OCR", use_hpip=True, hpip_profile={"precision": "f32", "pool_pages": False})
    assert fast.profile.precision == "f32" and not fast.profile.pool_pages and fast.profile.shape_buckets
    exact = create_pipeline("OCR")
    assert exact.profile == hpip.EXACT
    with pytest.raises(ConfigError, match="hpip_profile"):
        create_pipeline("OCR", use_hpip=True, hpip_profile={"turbo": True})


GOLDEN = [str(p) for p in sorted((DATA / "golden" / "imgs").glob("*.jpg"))[:5]]


def _count_rec_batches(model, monkeypatch) -> list[int]:
    """Rows of each recognition batch the model runs from now on."""
    rows: list[int] = []
    submit = model.submit

    def counted(x):
        rows.append(len(x))
        return submit(x)

    monkeypatch.setattr(model, "submit", counted)
    return rows


def test_fast_path_pools_recognition_across_the_pages_of_one_call(fast, monkeypatch):
    alone = [next(fast.predict(p)) for p in GOLDEN]
    rows = _count_rec_batches(fast.rec_model, monkeypatch)
    for p in GOLDEN:
        next(fast.predict(p))
    per_page = list(rows)
    rows.clear()
    pooled = list(fast.predict(GOLDEN))
    assert sum(rows) == sum(per_page)  # every crop once
    assert len(rows) < len(per_page) and rows.count(6) >= len(rows) - 1  # one partial batch at most
    assert [r["input_path"] for r in pooled] == GOLDEN  # in order
    for a, b in zip(alone, pooled, strict=True):
        np.testing.assert_array_equal(a["dt_polys"], b["dt_polys"])  # detection is per page
        assert len(b["rec_text"]) == len(a["rec_text"])
        assert _close(b["rec_text"], a["rec_text"]) > 0.95  # only the padding of batches changed


def test_pool_is_flushed_at_its_limits_and_before_a_bad_input(fast, monkeypatch, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    events = []
    monkeypatch.setattr(fast, "POOL_BYTES", 1)  # every page flushes at once
    rows = _count_rec_batches(fast.rec_model, monkeypatch)
    for res in fast.predict(GOLDEN[:2]):
        events.append((res["input_path"], len(rows)))
    assert events[0][1] < events[1][1]  # page 1 recognised before page 2 was read
    monkeypatch.undo()
    events.clear()
    gen = fast.predict([GOLDEN[0], str(bad), GOLDEN[1]], on_error=lambda label, exc: events.append(label))
    for res in gen:
        events.append(res["input_path"])
    assert events == [GOLDEN[0], str(bad), GOLDEN[1]]  # the error reported in its place
    gen = fast.predict([GOLDEN[0], str(bad)], on_error="raise")
    assert next(gen)["input_path"] == GOLDEN[0]  # results before the bad input are not lost
    with pytest.raises(InputError, match="broken.jpg"):
        next(gen)


def test_fast_path_detects_the_next_page_in_a_thread_with_the_same_results(fast, pipeline, monkeypatch):
    def spy(p):
        calls, real = [], p.detector.score_map

        def score_map(*args, **kwargs):
            calls.append(threading.get_ident())
            return real(*args, **kwargs)

        monkeypatch.setattr(p.detector, "score_map", score_map)
        return calls

    main = threading.get_ident()
    ahead, exact = spy(fast), spy(pipeline)
    timer = StageTimer()
    together = list(fast.predict(GOLDEN, timer=timer))
    list(pipeline.predict(GOLDEN[:2]))
    assert len(ahead) == len(GOLDEN) and main not in ahead  # use_hpip: detection one page ahead, in a thread
    assert exact == [main, main]  # the exact path: page by page in this thread
    assert timer.seconds["det_wait"] > 0 and timer.seconds["det_model"] > 0
    # one thread allowed: detection in this thread, and the results are the same
    monkeypatch.setattr(fast, "config", dataclasses.replace(fast.config, cpu_threads=1))
    ahead.clear()
    alone = list(fast.predict(GOLDEN))
    assert set(ahead) == {main}
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a["dt_polys"], b["dt_polys"])
        assert a["rec_text"] == b["rec_text"]


def test_stopping_early_stops_the_detection_thread(fast):
    before = threading.active_count()
    gen = fast.predict(GOLDEN)
    next(gen)
    gen.close()
    assert threading.active_count() == before


def test_an_owned_score_map_outlives_the_next_run(pipeline):
    first, second = (cv2.imread(p) for p in GOLDEN[:2])
    kept = pipeline.detector.score_map(first, own=True)
    again = kept.copy()
    pipeline.detector.score_map(second, own=True)
    np.testing.assert_array_equal(kept, again)


def test_pages_read_before_a_raised_error_are_not_lost(fast):
    gen = fast.predict([GOLDEN[0], GOLDEN[1], None], on_error="raise")  # None is no input
    assert [next(gen)["input_path"], next(gen)["input_path"]] == GOLDEN[:2]
    with pytest.raises(InputError):
        next(gen)


def test_exact_path_recognises_page_by_page(pipeline, monkeypatch):
    rows = _count_rec_batches(pipeline.rec_model, monkeypatch)
    alone = [next(pipeline.predict(p)) for p in GOLDEN]
    per_page = list(rows)
    rows.clear()
    together = list(pipeline.predict(GOLDEN))
    assert rows == per_page  # the same batches: none mixes two pages
    for a, b in zip(alone, together, strict=True):
        assert a["rec_text"] == b["rec_text"] and a["rec_score"] == b["rec_score"]


def test_openvino_run_copies_only_when_asked():
    model = load_model(resolve("PP-OCRv4_mobile_rec", "rec").onnx, "cpu", backend="openvino")
    a, b = (np.full((1, 3, 48, 64), v, np.float32) for v in (-1.0, 1.0))
    kept = model.run(a)
    view = model.run(a, copy=False)
    np.testing.assert_array_equal(view, kept)
    model.run(b)
    assert not np.array_equal(view, kept)  # the request's own buffer, overwritten by the next run
    np.testing.assert_array_equal(model.run(a), kept)  # a copy stays as it was


def test_openvino_streams_give_what_one_request_gives():
    path = resolve("PP-OCRv4_mobile_rec", "rec").onnx
    one = load_model(path, "cpu", backend="openvino")
    two = load_model(path, "cpu", backend="openvino", streams=2)
    assert int(two._compiled.get_property("NUM_STREAMS")) == 2 and one.streams == 1 and two.streams == 2
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-1, 1, (6, 3, 48, w)).astype(np.float32) for w in (320, 480, 320, 640, 96)]
    jobs = [two.submit(x) for x in xs[:2]]  # side by side
    outs = [job.result().copy() for job in jobs]
    for job in jobs:
        job.release()
    jobs = [two.submit(x) for x in xs[2:]]  # one more than the streams: queued, then run
    outs += [job.result().copy() for job in jobs]
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_array_equal(out, one.run(x))
    job = one.submit(xs[0])  # one request at a time: run when submitted
    np.testing.assert_array_equal(job.result(), outs[0])


FIRST_INFERENCES = """
import sys, threading
import numpy as np
from ocrflow.engine import load_model
from ocrflow.models import resolve

model = load_model(resolve("PP-OCRv4_mobile_rec", "rec").onnx, "cpu", threads=1, backend="openvino")
x = np.zeros((1, 3, 48, 64), np.float32)
barrier = threading.Barrier(8)

def first():
    barrier.wait()
    model.run(x) if sys.argv[1] == "run" else model.submit(x).result()

threads = [threading.Thread(target=first) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_threads_making_their_first_inference_together_do_not_deadlock():
    # OCRmyPDF's page threads hung this way (OpenVINO's binding, before the first inference ran alone):
    # 3 of 20 processes of 8 threads then. Each process here is a first time.
    import subprocess
    import sys

    resolve("PP-OCRv4_mobile_rec", "rec")  # fetched before the timed processes
    for k in range(12):
        mode = "run" if k % 2 == 0 else "submit"
        try:
            subprocess.run([sys.executable, "-c", FIRST_INFERENCES, mode], check=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"8 threads' first OpenVINO inferences ({mode}) deadlocked (process {k + 1} of 12)")


def test_fast_path_reads_the_same_with_one_or_two_streams():
    one = create_pipeline("OCR", use_hpip=True, hpip_profile={"rec_streams": 1, "backend": "openvino"})
    two = create_pipeline("OCR", use_hpip=True, hpip_profile={"rec_streams": 2, "backend": "openvino"})
    assert one.rec_model.streams == 1 and two.rec_model.streams == 2 and one.det_model.streams == 1
    for a, b in zip(one.predict(GOLDEN), two.predict(GOLDEN), strict=True):
        assert a["rec_text"] == b["rec_text"] and a["rec_score"] == b["rec_score"]
    # a batch that cannot be built after others were started: its error, and the next call reads as before
    rng = np.random.default_rng(5)
    crops = [rng.integers(0, 256, (32, 60 + 20 * i, 3), dtype=np.uint8) for i in range(13)]
    before = two.recognize(crops)
    with pytest.raises(ValueError, match="uint8"):
        two.recognize([*crops, np.zeros((8, 400, 3), np.float32)])  # widest: in the last batch
    assert two.recognize(crops) == before == one.recognize(crops)
    with pytest.raises(ConfigError, match="rec_streams"):
        create_pipeline("OCR", use_hpip=True, hpip_profile={"rec_streams": 0})


def test_pixel_inputs_normalise_to_the_float_inputs():
    """use_hpip on OpenVINO feeds uint8 pixels and normalises them in the graph: the same values,
    bar the padding, which is the pixel nearest the mean (detection) or 128 (recognition)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (736, 290, 3), dtype=np.uint8)
    params, (alpha, beta) = det.DetParams(), det.norm_coefficients()
    pixels = det.preprocess_pixels(image, params, (alpha, beta), shapes.bucket)
    assert pixels.shape == (1, 768, 288, 3) and pixels.dtype == np.uint8
    normalised = (pixels[0] * alpha + beta).transpose(2, 0, 1)[None]
    exact = det.preprocess(image, params, (alpha, beta), shapes.bucket)
    np.testing.assert_allclose(normalised[..., :736, :], exact[..., :736, :], atol=1e-5)
    assert np.abs(normalised[..., 736:, :]).max() < 0.01  # padding: ~0, as preprocess's zeros
    unpadded = det.preprocess_pixels(image, params, (alpha, beta))
    assert unpadded.shape == (1, 736, 288, 3)

    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((30, 45), (20, 200), (48, 30))]
    batch = rec.batch_pixels(crops, 48, rec.HPIP_MIN_WIDTH, shapes.bucket)
    exact = rec.batch_input(crops, 48, rec.HPIP_MIN_WIDTH, shapes.bucket)
    a, b = (np.array(v, np.float32) for v in rec.NORM)
    normalised = (batch * a + b).transpose(0, 3, 1, 2)
    assert batch.shape == (3, 48, exact.shape[3], 3)
    content = exact != 0  # batch_input pads with 0
    np.testing.assert_allclose(normalised[content], exact[content], atol=1e-6)
    assert np.abs(normalised[~content]).max() < 0.005


def test_openvino_normalises_pixels_in_the_graph():
    onnx = resolve("PP-OCRv4_mobile_det", "det").onnx
    norm = det.norm_coefficients()
    plain = load_model(onnx, "cpu", backend="openvino")
    fed = load_model(onnx, "cpu", backend="openvino", pixels=norm)
    assert fed.takes_pixels and not plain.takes_pixels
    image = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    params = det.DetParams()
    np.testing.assert_allclose(fed.run(det.preprocess_pixels(image, params, norm)),
                               plain.run(det.preprocess(image, params, norm)), atol=1e-4)


def test_openvino_leaves_the_detectors_final_sigmoid_to_the_caller():
    onnx = resolve("PP-OCRv4_mobile_det", "det").onnx
    plain = load_model(onnx, "cpu", backend="openvino")
    cut = load_model(onnx, "cpu", backend="openvino", logits=True)
    assert cut.returns_logits and not plain.returns_logits
    x = det.preprocess(np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8), det.DetParams())
    logits = cut.run(x)
    assert logits.min() < 0 or logits.max() > 1  # not probabilities
    np.testing.assert_allclose(det.sigmoid(logits), plain.run(x), atol=1e-6)
    # a model that does not end in a Sigmoid is left as it is (recognition ends in a Softmax)
    rec_model = load_model(resolve("PP-OCRv4_mobile_rec", "rec").onnx, "cpu", backend="openvino", logits=True)
    assert not rec_model.returns_logits


def test_openvino_hands_recognitions_probabilities_over_in_bf16(fast):
    if not hpip.cpu_bf16():
        pytest.skip("this CPU has no native bf16")
    from ocrflow.crop import crop_box

    onnx = resolve("PP-OCRv4_mobile_rec", "rec").onnx
    plain = load_model(onnx, "cpu", backend="openvino", precision="bf16")
    half = load_model(onnx, "cpu", backend="openvino", precision="bf16", bf16_probs=True, streams=2, threads=2)
    assert half.bf16_probs and not plain.bf16_probs
    image = cv2.imread(str(DEMO))
    boxes, _ = fast.detect(image)
    crops = [crop_box(image, b) for b in boxes[:6]]
    x = rec.batch_input(crops)
    job = half.submit(x)
    for out in (half.run(x), job.result()):  # both ways out of the engine
        assert out.dtype == np.uint16 and out.shape == plain.run(x).shape
        ours, full = rec.ctc_decode(out, fast.char_table), rec.ctc_decode(plain.run(x), fast.char_table)
        assert [t for t, _ in ours] == [t for t, _ in full] and any(t for t, _ in full)
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in full], atol=0.01)
    job.release()
    # a model that does not end in a Softmax keeps its float32 output (detection ends in a Sigmoid)
    assert not load_model(resolve("PP-OCRv4_mobile_det", "det").onnx, "cpu", backend="openvino",
                          precision="bf16", bf16_probs=True).bf16_probs


def test_openvino_runs_the_detection_heads_transposed_convolutions_as_1x1_ones():
    onnx = resolve("PP-OCRv4_mobile_det", "det").onnx
    plain = load_model(onnx, "cpu", backend="openvino")
    folded = load_model(onnx, "cpu", backend="openvino", deconv_as_conv=True)
    assert folded.deconvs_rewritten == 2 and plain.deconvs_rewritten == 0  # DB's head has two
    image = cv2.imread(str(DEMO))
    x = det.preprocess(image, det.DetParams())
    np.testing.assert_allclose(folded.run(x), plain.run(x), atol=1e-5)  # the same sums, in f32
    # a model without them is left as it is
    assert load_model(resolve("PP-OCRv4_mobile_rec", "rec").onnx, "cpu", backend="openvino",
                      deconv_as_conv=True).deconvs_rewritten == 0


def test_fast_path_boxes_are_those_of_the_sigmoid_in_the_graph(fast):
    if not fast.det_model.returns_logits:
        pytest.skip("detection does not run on OpenVINO here")
    in_graph = create_pipeline("OCR", use_hpip=True, hpip_profile={"det_logits": False})
    assert not in_graph.det_model.returns_logits
    for path in [DEMO, *sorted((DATA / "golden" / "imgs").glob("*.jpg"))[:4]]:
        image = cv2.imread(str(path))
        (a, sa), (b, sb) = fast.detect(image), in_graph.detect(image)
        assert len(a) == len(b) and np.abs(a - b).max() <= 1, path.name
        np.testing.assert_allclose(sa, sb, atol=1e-4)


def test_exact_path_runs_each_model_on_the_faster_f32_engine(caplog):
    installed = calibrate.candidates("auto", "f32")
    with caplog.at_level(logging.INFO, logger="ocrflow"):
        exact = create_pipeline("OCR")
    for task in ("det", "rec"):
        chosen = exact.calibration[task]
        assert calibrate.Candidate(chosen.backend, chosen.precision) in installed and chosen.precision == "f32"
        if len(installed) > 1:  # measured (or read from the cache), and said in the log
            assert set(chosen.ms) == {str(c) for c in installed}
            assert chosen.ms[str(calibrate.Candidate(chosen.backend, "f32"))] == min(chosen.ms.values())
            name = f"PP-OCRv4_mobile_{task}"
            assert any(r.getMessage().startswith(f"backend auto {task} model {name}: {chosen.backend} f32")
                       for r in caplog.records)
    engine = "OvModel" if exact.calibration["rec"].backend == "openvino" else "OrtModel"
    assert type(exact.rec_model).__name__ == engine
    # a named backend is used as it is
    named = create_pipeline("OCR", backend="onnxruntime")
    assert named.calibration == {} and type(named.rec_model).__name__ == "OrtModel"


def test_fast_path_on_openvino_takes_pixels(fast):
    for task, model in (("det", fast.det_model), ("rec", fast.rec_model)):
        assert model.takes_pixels == (fast.calibration[task].backend == "openvino")
    assert fast.det_model.returns_logits == (fast.calibration["det"].backend == "openvino")
    assert not fast.rec_model.returns_logits
    rec_choice = fast.calibration["rec"]
    assert fast.rec_model.bf16_probs == (rec_choice.backend == "openvino" and rec_choice.precision == "bf16")
    assert fast.profile.fast_crops


def test_use_hpip_with_a_fixed_backend_measures_only_its_candidates():
    fixed = create_pipeline("OCR", use_hpip=True, hpip_profile={"backend": "onnxruntime"})
    assert {c.backend for c in fixed.calibration.values()} == {"onnxruntime"}
    assert not fixed.det_model.takes_pixels and not fixed.det_model.returns_logits
    assert not fixed.profile.det_logits and not fixed.profile.rec_bf16_probs and not fixed.profile.det_deconv_as_conv
    assert not fixed.rec_model.bf16_probs
    with pytest.raises(ConfigError, match="hpip_profile.backend"):
        create_pipeline("OCR", use_hpip=True, hpip_profile={"backend": "tensorrt"})


def test_a_model_keeps_the_knobs_its_accuracy_needs_unless_the_user_sets_them():
    v6 = dict(det_model="PP-OCRv6_small_det", rec_model="PP-OCRv6_small_rec")
    kept = create_pipeline("OCR", use_hpip=True, **v6)
    assert kept.profile.rec_min_width is None and kept.recognizer.min_width == 320
    assert "PP-OCRv6_small_rec keeps" in kept.profile.reason
    assert kept.profile.shape_buckets and kept.profile.pool_pages  # the other knobs stay use_hpip's
    det_choice = kept.calibration["det"]
    on_bf16 = det_choice.backend == "openvino" and det_choice.precision == "bf16"
    assert getattr(kept.det_model, "deconvs_rewritten", 0) == (2 if on_bf16 else 0)
    assert create_pipeline("OCR", use_hpip=True, hpip_profile={"rec_min_width": 32}, **v6).recognizer.min_width == 32
    v4 = create_pipeline("OCR", use_hpip=True).profile
    assert v4.rec_min_width == 32 and not v4.det_deconv_as_conv  # v4 mobile's detector keeps its head
