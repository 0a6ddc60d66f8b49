"""Evaluation metrics on hand-made cases, dataset readers, and the eval command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ocrflow.eval import DetScore, E2EScore, GtLine, RecScore, load, match_image
from ocrflow.eval.cli import main as eval_main


def rect(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=float)


def test_perfect_and_empty_detection():
    gts = [GtLine(rect(0, 0, 10, 10), "a"), GtLine(rect(20, 0, 30, 10), "b")]
    perfect = match_image(gts, [rect(0, 0, 10, 10), rect(20, 0, 30, 10)])
    assert len(perfect.pairs) == 2 and perfect.gt_care == 2 and perfect.det_care == 2
    empty = match_image(gts, [])
    score = DetScore()
    score.add(empty)
    assert score.summary() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0,
                               "gt_lines": 2, "detected": 0, "matched": 0}


def test_iou_must_exceed_half_strictly():
    gts = [GtLine(rect(0, 0, 10, 10))]
    # det 0..10 x 0..5 inside the gt: IoU = 50/100 = 0.5 exactly -> no match
    assert match_image(gts, [rect(0, 0, 10, 5)]).pairs == []
    assert match_image(gts, [rect(0, 0, 10, 6)]).pairs == [(0, 0)]


def test_greedy_matching_in_gt_then_det_order():
    gts = [GtLine(rect(0, 0, 10, 10)), GtLine(rect(1, 0, 11, 10))]
    dets = [rect(0, 0, 10, 10)]
    # gt 0 takes the only detection although gt 1 overlaps it too
    assert match_image(gts, dets).pairs == [(0, 0)]


def test_dont_care_regions_count_for_nothing():
    gts = [GtLine(rect(0, 0, 10, 10), "a"), GtLine(rect(50, 0, 60, 10), "###", ignore=True)]
    m = match_image(gts, [rect(0, 0, 10, 10), rect(50, 0, 60, 10), rect(100, 0, 110, 10)])
    score = DetScore()
    score.add(m)
    s = score.summary()
    assert s["gt_lines"] == 1 and s["detected"] == 2 and s["matched"] == 1  # the '###' hit is not counted
    assert s["recall"] == 1.0 and s["precision"] == 0.5 and s["hmean"] == pytest.approx(2 / 3)


def test_invalid_polygons_are_skipped():
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=float)  # self-intersecting
    m = match_image([GtLine(bowtie), GtLine(rect(0, 0, 10, 10))], [rect(0, 0, 10, 10), bowtie])
    assert m.gt_care == 1 and m.det_care == 1 and m.pairs == [(1, 0)]


def test_micro_average_over_images():
    score = DetScore()
    score.add(match_image([GtLine(rect(0, 0, 10, 10))], [rect(0, 0, 10, 10)]))
    score.add(match_image([GtLine(rect(0, 0, 10, 10)) for _ in range(3)], []))
    assert score.summary()["recall"] == pytest.approx(0.25)


def test_recognition_metric_ignores_spaces_and_uses_normalised_edit_distance():
    rec = RecScore()
    assert rec.add("Hello World", "HelloWorld")
    assert not rec.add("abcd", "abce")
    assert not rec.add("", "xy")
    s = rec.summary()
    assert s["samples"] == 3
    assert s["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["norm_edit_dis"] == pytest.approx(1 - (0 + 0.25 + 1) / 3, abs=1e-4)
    rec.add("ABC", "abc")
    assert rec.summary()["accuracy_ignore_case"] == pytest.approx(2 / 4, abs=1e-4)


def test_end_to_end_needs_the_box_and_the_text():
    gts = [GtLine(rect(0, 0, 10, 10), "TOTAL"), GtLine(rect(20, 0, 30, 10), "9.99"),
           GtLine(rect(40, 0, 50, 10), "gone")]
    e2e = E2EScore()
    outcome = e2e.add(gts, [rect(0, 0, 10, 10), rect(20, 0, 30, 10), rect(80, 0, 90, 10)], ["total", "9.99", "x"])
    assert outcome == [(0, 0, False), (1, 1, True)]
    s = e2e.summary()
    assert s["accuracy"] == pytest.approx(1 / 3) and s["accuracy_ignore_case"] == pytest.approx(2 / 3)
    assert s["precision"] == pytest.approx(1 / 3)


def test_readers(tmp_path):
    (tmp_path / "det.txt").write_text(
        'a.jpg\t[{"transcription": "hi", "points": [[0,0],[4,0],[4,2],[0,2]]},'
        ' {"transcription": "###", "points": [[5,5],[6,5],[6,6],[5,6]]}]\n', encoding="utf-8")
    (s,) = load(tmp_path / "det.txt")
    assert s.image == tmp_path / "a.jpg" and [ln.text for ln in s.lines] == ["hi", "###"]
    assert [ln.ignore for ln in s.lines] == [False, True]
    (tmp_path / "rec.txt").write_text("crops/1.png\tHello\n", encoding="utf-8")
    (r,) = load(tmp_path / "rec.txt")
    assert r.lines[0].text == "Hello"
    ic = tmp_path / "ic15"
    ic.mkdir()
    (ic / "img_1.jpg").write_bytes(b"")
    (ic / "gt_img_1.txt").write_text("\ufeff1,1,9,1,9,5,1,5,a,b\n0,0,2,0,2,2,0,2,###\n", encoding="utf-8")
    (i,) = load(ic)
    assert [ln.text for ln in i.lines] == ["a,b", "###"] and i.lines[1].ignore
    sroie = tmp_path / "sroie"
    (sroie / "box").mkdir(parents=True)
    (sroie / "img").mkdir()
    (sroie / "box" / "000.csv").write_text("1,2,3,2,3,4,1,4,TOTAL: 1,000.00\r\n", encoding="utf-8")
    (sr,) = load(sroie)
    assert sr.lines[0].text == "TOTAL: 1,000.00" and sr.image.name == "000.jpg"


def test_bad_labels_name_the_line(tmp_path):
    from ocrflow import InputError

    (tmp_path / "det.txt").write_text("a.jpg\t[{bad json\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"det.txt:1"):
        load(tmp_path / "det.txt", "paddle-det")
    with pytest.raises(InputError, match="cannot tell the label format"):
        load(tmp_path)


@pytest.fixture()
def labelled_demo(tmp_path, pipeline):
    """A PaddleOCR det label file for the demo image, built from a reading we know is right."""
    from conftest import DEMO

    res = next(pipeline.predict(str(DEMO)))
    items = [{"transcription": t, "points": p} for t, p in zip(res["rec_text"], res["dt_polys"].tolist())]
    items[0]["transcription"] = "WRONG"
    (tmp_path / "demo.png").write_bytes(DEMO.read_bytes())
    (tmp_path / "label.txt").write_text(f"demo.png\t{json.dumps(items, ensure_ascii=False)}\n", encoding="utf-8")
    return tmp_path / "label.txt", len(items)


def test_eval_pipeline_on_labelled_image(labelled_demo, pipeline, capsys, tmp_path):
    from ocrflow.eval import evaluate

    label, n = labelled_demo
    samples = load(label)
    det = evaluate(pipeline, samples, "det", progress=False)
    assert det["hmean"] == 1.0
    e2e = evaluate(pipeline, samples, "e2e", errors=True, progress=False)
    assert e2e["accuracy"] == pytest.approx((n - 1) / n)
    assert e2e["errors"][0]["misread"] == [{"label": "WRONG", "pred": next(pipeline.predict(str(samples[0].image)))[
        "rec_text"][0]}]
    rec = evaluate(pipeline, samples, "rec", progress=False)
    assert rec["samples"] == n and rec["accuracy"] > 0.8


def test_eval_command_writes_table_and_json(labelled_demo, tmp_path):
    label, n = labelled_demo
    out = tmp_path / "r.json"
    exe = Path(sys.executable).parent / "ocrflow"
    proc = subprocess.run([str(exe), "eval", "--task", "det", "--data", str(label), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "hmean" in proc.stdout
    assert json.loads(out.read_text())["hmean"] == 1.0
    assert eval_main(["--task", "det", "--data", str(tmp_path / "nope")]) == 1


def test_check_dataset_finds_problems(tmp_path):
    from conftest import DEMO

    from ocrflow.eval.check import main as check_main

    (tmp_path / "demo.png").write_bytes(DEMO.read_bytes())
    items = [{"transcription": "登机牌", "points": [[160, 28], [353, 23], [354, 68], [161, 72]]},
             {"transcription": "flat", "points": [[0, 0], [10, 0], [20, 0], [5, 0]]},
             {"transcription": "\u2603snow", "points": [[1, 1], [9, 1], [9, 9], [1, 9]]}]
    (tmp_path / "label.txt").write_text(
        f"demo.png\t{json.dumps(items, ensure_ascii=False)}\nmissing.png\t[]\n", encoding="utf-8")
    report = tmp_path / "report.json"
    code = check_main(["--data", str(tmp_path / "label.txt"), "--save_path", str(tmp_path / "drawn"),
                       "--json", str(report)])
    assert code == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    kinds = sorted(p["problem"] for p in data["problems"])
    assert kinds == ["degenerate polygon", "image file missing"]
    assert data["stats"]["chars_missing_from_dictionary"] == {"\u2603": 1}
    assert (tmp_path / "drawn" / "demo_labels.jpg").is_file()
