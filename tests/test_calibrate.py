"""use_hpip's calibration: the fastest candidate that reads what f32 reads, measured once and cached."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ocrflow.engine import calibrate
from ocrflow.engine.calibrate import Candidate
from ocrflow.engine.device import parse_device
from ocrflow.engine.jobs import RunsNow

F32, BF16, ORT = Candidate("openvino", "f32"), Candidate("openvino", "bf16"), Candidate("onnxruntime", "f32")
BF16_2 = Candidate("openvino", "bf16", 2)


class FakeEngine(RunsNow):
    """Recognition-shaped outputs (N x T x classes) that read `reads`, after `delay` seconds."""

    def __init__(self, delay: float, reads: list[int]):
        self.delay, self.reads = delay, reads

    def run(self, x, copy=True):
        time.sleep(self.delay)
        out = np.zeros((x.shape[0], len(self.reads), 20), np.float32)
        out[:, np.arange(len(self.reads)), self.reads] = 1.0
        return out


class FakeStreams(FakeEngine):
    """FakeEngine with `streams` requests running side by side (threads sleeping together)."""

    def __init__(self, delay: float, reads: list[int], streams: int = 2):
        super().__init__(delay, reads)
        self.streams = streams
        self.pool = ThreadPoolExecutor(streams)
        self.most = self.running = 0

    def _run(self, x):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            return self.run(x)
        finally:
            self.running -= 1

    def submit(self, x):
        future = self.pool.submit(self._run, x)

        class Job:
            result = future.result

            def release(self):
                pass

        return Job()


TEXT = [3, 0, 5, 5, 0, 7, 9, 0, 0, 2]  # reads 3 5 7 9 2 after CTC
BATCH = [np.zeros((6, 3, 48, 320), np.float32)]


def test_the_faster_candidate_wins():
    engines = {F32: FakeEngine(0.02, TEXT), BF16: FakeEngine(0.0, TEXT), ORT: FakeEngine(0.04, TEXT)}
    got = calibrate.measure("rec", BATCH, [F32, BF16, ORT], engines.__getitem__, rounds=2)
    assert (got.backend, got.precision) == ("openvino", "bf16")
    assert got.ms["openvino bf16"] < got.ms["openvino f32"] < got.ms["onnxruntime f32"]
    assert got.agreement == {"openvino f32": 1.0, "openvino bf16": 1.0, "onnxruntime f32": 1.0}
    # made slower, it loses
    engines[BF16] = FakeEngine(0.06, TEXT)
    got = calibrate.measure("rec", BATCH, [F32, BF16, ORT], engines.__getitem__, rounds=2)
    assert (got.backend, got.precision) == ("openvino", "f32")


def test_streams_are_kept_where_they_read_faster():
    # Two requests side by side at 0.03 s each beat one at a time at 0.02 s: 4 batches in 0.06 s, not 0.08
    batch = BATCH * 4
    two = FakeStreams(0.03, TEXT)
    got = calibrate.measure("rec", batch, [BF16, BF16_2], {BF16: FakeEngine(0.02, TEXT), BF16_2: two}.__getitem__,
                            rounds=2)
    assert (got.backend, got.precision, got.streams) == ("openvino", "bf16", 2) and two.most == 2
    assert str(BF16_2) == "openvino bf16 2 streams" and "openvino bf16 2 streams" in got.summary()
    # made slower, they lose
    got = calibrate.measure("rec", batch, [BF16, BF16_2], {BF16: FakeEngine(0.02, TEXT),
                                                          BF16_2: FakeStreams(0.05, TEXT)}.__getitem__, rounds=2)
    assert got.streams == 1


def test_streams_are_measured_for_recognition_on_two_threads_or_more(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(calibrate, "candidates", lambda backend, precision, streams: [BF16, BF16_2][:2 if streams ==
                                                                                                    "measure" else 1])
    model = tmp_path / "rec.onnx"
    model.write_bytes(b"model")
    loads = []

    def load(cand):
        loads.append(cand)
        return FakeStreams(0.01, TEXT) if cand.streams == 2 else FakeEngine(0.02, TEXT)

    cpu = parse_device("cpu")
    assert calibrate.choose(model, "rec", cpu, 2, load, streams="measure").streams == 2 and loads == [BF16, BF16_2]
    assert calibrate.choose(model, "rec", cpu, 2, load, streams="measure").cached  # streams kept in the cache
    loads.clear()
    assert calibrate.choose(model, "rec", cpu, 1, load, streams="measure").streams == 1 and loads == []
    assert calibrate.choose(model, "det", cpu, 2, load, streams="measure").streams == 1 and loads == []


def test_a_fast_candidate_that_reads_other_text_is_not_kept():
    wrong = [3, 0, 5, 5, 0, 8, 9, 0, 0, 4]  # two of five characters differ
    engines = {F32: FakeEngine(0.02, TEXT), BF16: FakeEngine(0.0, wrong)}
    got = calibrate.measure("rec", BATCH, [F32, BF16], engines.__getitem__, rounds=1)
    assert (got.backend, got.precision) == ("openvino", "f32")
    assert got.agreement["openvino bf16"] == pytest.approx(0.6)


def test_detection_agreement_is_on_the_text_map():
    ref = [np.zeros((1, 1, 64, 64), np.float32)]
    ref[0][..., 10:20, 10:50] = 0.9
    same = [ref[0] + 0.01]
    shifted = [np.roll(ref[0], 5, axis=-2)]
    assert calibrate.agreement("det", ref, same) == 1.0
    assert calibrate.agreement("det", ref, shifted) == pytest.approx(1 - 2 * 5 * 40 / (15 * 40))


def test_the_choice_is_cached_per_model_and_used_on_the_second_load(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(calibrate, "candidates", lambda backend, precision, streams: [F32, BF16])
    model = tmp_path / "rec.onnx"
    model.write_bytes(b"model one")
    loads = []

    def load(cand):
        loads.append(cand)
        return FakeEngine(0.0 if cand == BF16 else 0.01, TEXT)

    cpu = parse_device("cpu")
    first = calibrate.choose(model, "rec", cpu, 2, load)
    assert not first.cached and (first.backend, first.precision) == ("openvino", "bf16") and loads == [F32, BF16]
    [key] = json.loads(calibrate.cache_path().read_text())
    assert calibrate.cpu_name() in key and "threads=2" in key
    second = calibrate.choose(model, "rec", cpu, 2, load)
    assert second.cached and (second.backend, second.precision) == ("openvino", "bf16") and len(loads) == 2
    # another model file, or another thread count, is measured anew
    other = tmp_path / "other.onnx"
    other.write_bytes(b"model two")
    assert not calibrate.choose(other, "rec", cpu, 2, load).cached
    assert not calibrate.choose(model, "rec", cpu, 1, load).cached
    assert len(json.loads(calibrate.cache_path().read_text())) == 3


def test_one_candidate_is_not_measured(monkeypatch, tmp_path):
    monkeypatch.setenv("OCRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(calibrate, "candidates", lambda backend, precision, streams: [ORT])
    got = calibrate.choose(tmp_path / "absent.onnx", "det", parse_device("cpu"), None, lambda c: 1 / 0)
    assert (got.backend, got.precision) == ("onnxruntime", "f32") and not calibrate.cache_path().exists()


def test_fixed_knobs_narrow_the_candidates():
    every = calibrate.candidates()
    assert every and every[0].precision == "f32"  # the reference first
    assert all(c.precision == "f32" for c in calibrate.candidates(precision="f32"))
    assert all(c.backend == "onnxruntime" for c in calibrate.candidates(backend="onnxruntime"))
    assert all(c.streams == 1 for c in every)
    measured = calibrate.candidates(streams="measure")
    assert {c.streams for c in measured if c.backend == "openvino"} <= {1, 2}
    assert all(c.streams == 1 for c in measured if c.backend == "onnxruntime")


def test_calibration_inputs_have_the_pipelines_shapes():
    det_in = calibrate.inputs("det")
    assert [x.shape for x in det_in] == [(1, 3, 960, 736), (1, 3, 640, 960)]
    rec_in = calibrate.inputs("rec", rec_height=48)
    assert [x.shape for x in rec_in] == [(6, 3, 48, 320), (6, 3, 48, 640)] * 2
    assert all(x.min() >= -1 and x.max() <= 1 and x.std() > 0.05 for x in rec_in)  # text drawn in


def test_the_choices_on_record_can_be_listed_and_cleared(tmp_path, monkeypatch, capsys):
    from ocrflow.models.cli import main

    monkeypatch.setenv("OCRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(calibrate, "candidates", lambda backend, precision, streams: [F32, BF16])
    model = tmp_path / "PP-OCRv4_mobile_rec" / "inference.onnx"
    model.parent.mkdir()
    model.write_bytes(b"model")
    assert main(["calibration"]) == 0 and "no choices on record yet" in capsys.readouterr().out
    calibrate.choose(model, "rec", parse_device("cpu"), 2, lambda c: FakeEngine(0.0 if c == BF16 else 0.01, TEXT))
    assert main(["calibration", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["model"] == "PP-OCRv4_mobile_rec" and row["task"] == "rec" and row["threads"] == 2
    assert (row["backend"], row["precision"]) == ("openvino", "bf16") and set(row["ms"]) == {str(F32), str(BF16)}
    assert main(["calibration"]) == 0 and "PP-OCRv4_mobile_rec" in capsys.readouterr().out
    assert main(["calibration", "--clear"]) == 0 and not calibrate.cache_path().exists()
