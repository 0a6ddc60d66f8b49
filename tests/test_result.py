"""OCRResult: the seed's keys in order, print, .json, save_to_json, save_to_img, .img."""

from __future__ import annotations

import ast
import json

import cv2
import numpy as np
import pytest
from conftest import DEMO
from PIL import Image

from ocrflow import OCRResult
from ocrflow.result import pretty_json

SEED_KEYS = ["input_path", "page_index", "dt_polys", "dt_scores", "rec_text", "rec_score"]


@pytest.fixture(scope="module")
def res(pipeline) -> OCRResult:
    (result,) = pipeline.predict(str(DEMO))
    return result


@pytest.fixture(scope="module")
def demo_shape() -> tuple[int, int, int]:
    return cv2.imread(str(DEMO), cv2.IMREAD_COLOR).shape


def test_is_a_dict_with_seed_keys_in_order(res):
    assert isinstance(res, OCRResult) and isinstance(res, dict)
    assert list(res) == SEED_KEYS
    assert list(res.json) == SEED_KEYS
    assert res["input_path"] == str(DEMO) and res["page_index"] is None
    n = len(res["rec_text"])
    assert n >= 25
    assert len(res["dt_polys"]) == len(res["dt_scores"]) == len(res["rec_score"]) == n
    assert "BOARDING" in res["rec_text"]


def test_values(res):
    polys = np.asarray(res["dt_polys"])
    assert polys.shape == (len(res["rec_text"]), 4, 2)
    assert np.issubdtype(polys.dtype, np.integer)
    assert all(isinstance(t, str) for t in res["rec_text"])
    assert all(0.0 <= float(s) <= 1.0 for s in res["rec_score"])
    assert all(0.0 <= float(s) <= 1.0 for s in res["dt_scores"])


def test_json_is_plain_and_serialisable(res):
    data = res.json
    text = json.dumps(data, ensure_ascii=False)  # would raise on numpy values
    assert json.loads(text) == data
    assert isinstance(data["dt_polys"], list)
    assert all(type(v) is int for poly in data["dt_polys"] for pt in poly for v in pt)
    assert all(type(s) is float for s in data["rec_score"] + data["dt_scores"])
    assert data["rec_text"] == list(res["rec_text"])


def test_print_is_json_with_chinese_unescaped(res, capsys):
    res.print()
    out = capsys.readouterr().out
    assert json.loads(out) == res.json
    assert "登机牌" in out and "\\u" not in out
    assert out.startswith("{\n    \"input_path\"")  # indent=4 by default
    # points and polygons on one line each, as the seed prints them
    first = res.json["dt_polys"][0]
    assert json.dumps(first) in out


def test_print_indent_and_ascii(res, capsys):
    res.print(indent=2, ensure_ascii=True)
    out = capsys.readouterr().out
    assert json.loads(out) == res.json
    assert out.startswith("{\n  \"input_path\"")
    assert "登机牌" not in out and "\\u767b" in out


def test_print_without_format_json(res, capsys):
    res.print(format_json=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line
    assert ast.literal_eval(out) == res.json
    assert "登机牌" in out


def test_str_is_one_line_json(res):
    text = str(res)
    assert "\n" not in text
    assert json.loads(text) == res.json


def test_save_to_json_into_folder(res, tmp_path):
    out = tmp_path / "out" / "deeper"  # created as needed
    target = res.save_to_json(out)
    assert target == out / "general_ocr_002.json"
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == res.json
    assert list(json.loads(text)) == SEED_KEYS
    assert "登机牌" in text


def test_save_to_json_to_a_file(res, tmp_path):
    target = res.save_to_json(tmp_path / "sub" / "x.json")
    assert target == tmp_path / "sub" / "x.json"
    assert json.loads(target.read_text(encoding="utf-8")) == res.json
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "x.json"]
    res.save_to_json(str(tmp_path / "y.json"))  # a str works too
    assert json.loads((tmp_path / "y.json").read_text(encoding="utf-8")) == res.json


def test_img_is_side_by_side(res, demo_shape):
    img = res.img
    h, w, _ = demo_shape
    assert img.shape == (h, 2 * w, 3) and img.dtype == np.uint8
    src = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    left, right = img[:, :w].astype(int), img[:, w:].astype(int)
    assert not np.array_equal(left, src)  # boxes drawn over the image
    assert np.abs(left - src).mean() < 60  # ... but it is still the image
    assert right.mean() > 150  # the text side is mostly white


def test_save_to_img_into_folder(res, tmp_path, demo_shape):
    target = res.save_to_img(tmp_path / "vis")
    assert target == tmp_path / "vis" / "general_ocr_002.png"
    vis = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    assert vis is not None and vis.shape == (demo_shape[0], 2 * demo_shape[1], 3)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # written in the format its name says
    assert np.array_equal(vis, res.img)  # PNG: lossless


def test_save_to_img_to_a_jpg_file(res, tmp_path, demo_shape):
    target = res.save_to_img(tmp_path / "x.jpg")
    assert target == tmp_path / "x.jpg"
    assert target.read_bytes()[:3] == b"\xff\xd8\xff"
    vis = cv2.imread(str(target), cv2.IMREAD_COLOR)
    assert vis.shape == (demo_shape[0], 2 * demo_shape[1], 3)


def test_save_all(res, tmp_path):
    res.save_all(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["general_ocr_002.json", "general_ocr_002.png"]


def test_jpg_input_keeps_its_suffix(pipeline, tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    path = tmp_path / "strip.jpeg"
    cv2.imwrite(str(path), strip)
    (result,) = pipeline.predict(str(path))
    target = result.save_to_img(tmp_path / "out")
    assert target.name == "strip.jpeg"
    assert cv2.imread(str(target)).shape == (90, 920, 3)
    assert result.save_to_json(tmp_path / "out").name == "strip.json"


def test_pdf_pages_save_as_stem_page(pipeline, tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    im = Image.fromarray(np.ascontiguousarray(strip[:, :, ::-1]))
    pdf = tmp_path / "scan.pdf"
    im.save(pdf, "PDF", save_all=True, append_images=[im], resolution=144.0)
    results = list(pipeline.predict(str(pdf)))
    assert [r["page_index"] for r in results] == [0, 1]
    out = tmp_path / "out"
    paths = [r.save_to_json(out) for r in results] + [r.save_to_img(out) for r in results]
    assert [p.name for p in paths] == ["scan_0.json", "scan_1.json", "scan_0.png", "scan_1.png"]
    for index in (0, 1):
        saved = json.loads((out / f"scan_{index}.json").read_text(encoding="utf-8"))
        assert saved["input_path"] == str(pdf) and saved["page_index"] == index
        assert "BOARDING" in saved["rec_text"]


def test_array_result_saves_under_a_generic_name(pipeline, tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    (result,) = pipeline.predict(strip)
    assert result["input_path"] is None
    target = result.save_to_json(tmp_path)
    assert target.parent == tmp_path and target.suffix == ".json"
    assert json.loads(target.read_text(encoding="utf-8"))["input_path"] is None


def test_empty_result_prints_and_draws(tmp_path):
    image = np.full((20, 30, 3), 255, np.uint8)
    empty = OCRResult({"input_path": None, "page_index": None, "dt_polys": np.zeros((0, 4, 2), np.int32),
                       "dt_scores": [], "rec_text": [], "rec_score": []}, image=image, name="blank")
    assert json.loads(pretty_json(empty.json)) == {k: (None if k in ("input_path", "page_index") else [])
                                                  for k in SEED_KEYS}
    assert empty.img.shape == (20, 60, 3)
    assert empty.save_to_img(tmp_path).name == "blank.png"


def test_result_without_image_cannot_draw():
    bare = OCRResult({k: [] for k in SEED_KEYS})
    with pytest.raises(ValueError, match="no image"):
        _ = bare.img
