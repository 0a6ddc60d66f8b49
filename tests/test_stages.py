"""PaddleX 3.x's stages: page orientation, unwarping, text line orientation (ocrflow.stages).

Array functions are tested without a model; the stages on real models and real images (the
seed's boarding pass turned 90 / 180 / 270 degrees)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import DEMO

from ocrflow import create_pipeline
from ocrflow.config import ALIASES, build
from ocrflow.errors import ConfigError, ModelError
from ocrflow.result import KEYS
from ocrflow.stages import orientation, unwarp

TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


# -- array functions ------------------------------------------------------------------------------

def test_rotate_image_grows_the_canvas_and_maps_points_as_its_matrix_says():
    img = np.zeros((40, 100, 3), np.uint8)
    img[10, 70] = 255
    out = orientation.rotate_image(img, 90)
    assert out.shape == (100, 40, 3)
    x, y = orientation.rotation_matrix(40, 100, 90) @ np.array([70, 10, 1.0])
    peak = np.unravel_index(np.argmax(out[..., 0]), out.shape[:2])
    assert abs(peak[0] - y) <= 1 and abs(peak[1] - x) <= 1
    assert orientation.rotate_image(img, 0) is img
    with pytest.raises(ValueError):
        orientation.rotate_image(img, 360)


def test_doc_input_short_side_then_centre_crop():
    x = orientation.doc_input(np.full((300, 600, 3), 128, np.uint8))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert orientation.doc_input(np.zeros((1, 1, 3), np.uint8)).shape == (3, 224, 224)
    assert orientation.doc_input(np.zeros((2, 200, 3), np.uint8)) is None  # a strip: passed through


def test_line_inputs():
    crops = [np.zeros((20, 300, 3), np.uint8), np.full((30, 10, 3), 255, np.uint8)]
    v2 = orientation.line_input_v2(crops)
    assert v2.shape == (2, 3, 48, 192)
    assert np.all(v2[1, :, :, 16:] == 0) and np.all(v2[1, :, :, :16] == 1)  # 48 high, 16 wide, zero pad
    assert orientation.line_input_lcnet(crops).shape == (2, 3, 80, 160)


class _FixedClassifier:
    """A 0 / 180 line classifier that answers the given P(180) for each line, in order."""

    output_shape = ["batch", 2]
    metadata: dict = {}
    input_dtype = np.dtype(np.float32)

    def __init__(self, p180: list[float]):
        self.p180 = list(p180)

    def run(self, x):
        p = np.array([self.p180.pop(0) for _ in range(len(x))], np.float32)
        return np.stack([1 - p, p], axis=1)


def test_line_orientation_names_the_lines_to_read_both_ways():
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (20, 60 + 10 * i, 3), dtype=np.uint8) for i in range(4)]
    p180 = [0.02, 0.3, 0.95, 0.6]  # sure upright, doubtful, sure turned (> 0.9), doubtful
    stage = orientation.LineOrientation(_FixedClassifier(p180), "v2", batch_size=3)
    angles, turned, others = stage.orient(crops, verify=True)
    assert angles == [0, 0, 1, 0]  # PaddleOCR's rule for this classifier: 180 above 0.9
    assert np.array_equal(turned[2], cv2.rotate(crops[2], cv2.ROTATE_180)) and turned[1] is crops[1]
    assert sorted(others) == [1, 2, 3]  # P(180) above VERIFY_ABOVE (0.1)
    assert np.array_equal(others[1], cv2.rotate(crops[1], cv2.ROTATE_180))  # the other way round
    assert others[2] is crops[2]
    stage = orientation.LineOrientation(_FixedClassifier(p180), "v2")
    angles, _, others = stage.orient(crops, verify=False)
    assert angles == [0, 0, 1, 0] and others == {}
    assert orientation.LineOrientation(_FixedClassifier([]), "v2").orient([], verify=True) == ([], [], {})


def test_apply_grid_identity_keeps_the_page():
    img = np.random.RandomState(0).randint(0, 255, (130, 90, 3), np.uint8)
    gy, gx = np.meshgrid(np.linspace(-1, 1, 45), np.linspace(-1, 1, 31), indexing="ij")
    out = unwarp.apply_grid(img, np.stack([gx, gy]).astype(np.float32))
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - img).max() <= 1


# -- settings -------------------------------------------------------------------------------------

def test_paddlex_3_names_and_ocr_version():
    conf = build({"ocr_version": "PP-OCRv6", "use_textline_orientation": True, "text_det_thresh": 0.4,
                  "textline_orientation_model_name": "ch_ppocr_mobile_v2.0_cls"})
    assert (conf.det_model, conf.rec_model) == ("PP-OCRv6_small_det", "PP-OCRv6_small_rec")
    assert conf.use_textline_orientation and conf.det.thresh == 0.4
    conf = build({"ocr_version": "PP-OCRv6", "text_recognition_model_dir": "/models/my_rec"})
    assert conf.det_model == "PP-OCRv6_small_det" and conf.rec_model == "/models/my_rec"  # a named model wins
    assert ALIASES["doc_orientation_classify_model_dir"] == "doc_orientation_classify_model"
    with pytest.raises(ConfigError, match="ocr_version"):
        build({"ocr_version": "PP-OCRv9"})
    with pytest.raises(ConfigError, match="use_doc_unwarping"):
        build({"use_doc_unwarping": "yes"})


def test_wrong_kind_of_model_for_a_stage_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not a cls model|not a text line|is a det model"):
        create_pipeline("OCR", use_textline_orientation=True, textline_orientation_model="PP-OCRv4_mobile_det")
    with pytest.raises(ModelError, match="doc_ori"):
        create_pipeline("OCR", use_doc_orientation_classify=True,
                        doc_orientation_classify_model="ch_ppocr_mobile_v2.0_cls")


# -- the stages on real models --------------------------------------------------------------------

@pytest.fixture(scope="module")
def upright(pipeline_v6):
    return next(pipeline_v6.predict(str(DEMO)))


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_turned_boarding_pass_is_read_as_the_upright_one(pipeline_v6, upright, turn):
    image = cv2.rotate(cv2.imread(str(DEMO)), TURNS[turn])
    res = next(pipeline_v6.predict(image))
    assert res["doc_preprocessor_res"]["angle"] == turn  # the counter-clockwise turn that undoes it
    assert res.page_img.shape[:2] == cv2.imread(str(DEMO)).shape[:2]
    same = set(res["rec_text"]) & set(upright["rec_text"])
    assert len(same) >= 0.75 * len(upright["rec_text"]), sorted(set(upright["rec_text"]) - same)
    assert "BOARDING PASS" in " ".join(res["rec_text"]) or "BOARDING" in res["rec_text"]


def test_results_keep_the_seed_keys_first(pipeline_v6, upright, tmp_path):
    assert list(upright.keys()) == [*KEYS, "doc_preprocessor_res", "textline_orientation_angles"]
    assert upright["doc_preprocessor_res"] == {
        "model_settings": {"use_doc_orientation_classify": True, "use_doc_unwarping": False}, "angle": 0}
    assert upright["textline_orientation_angles"] == [0] * len(upright["rec_text"])
    json.loads(json.dumps(upright.json))
    picture = cv2.imread(str(upright.save_to_img(tmp_path)))
    assert picture.shape[1] == 2 * upright.page_img.shape[1]


def test_upside_down_lines_on_an_upright_page(pipeline):
    """use_textline_orientation per call, on the seed's pipeline: a page turned 180 degrees without
    page orientation is read line by line."""
    image = cv2.imread(str(DEMO))
    upright = next(pipeline.predict(image))
    res = next(pipeline.predict(cv2.rotate(image, cv2.ROTATE_180), use_textline_orientation=True))
    assert sum(res["textline_orientation_angles"]) >= 0.8 * len(res["rec_text"])
    same = set(res["rec_text"]) & set(upright["rec_text"])
    assert len(same) >= 0.5 * len(upright["rec_text"])
    assert "textline_orientation_angles" not in next(pipeline.predict(image))  # off again: per call only


def test_textline_verification_reads_doubtful_lines_both_ways(pipeline):
    """textline_orientation_verify (on by default): the lines the classifier may have wrong are read
    the other way round too, and the clearly better reading kept, with its words."""
    image = cv2.imread(str(DEMO))
    upright = next(pipeline.predict(image))
    turned = cv2.rotate(image, cv2.ROTATE_180)
    plain = next(pipeline.predict(turned, use_textline_orientation=True, textline_orientation_verify=False))
    checked = next(pipeline.predict(turned, use_textline_orientation=True, return_word_box=True))

    def same(res):
        return len(set(res["rec_text"]) & set(upright["rec_text"]))

    assert same(checked) > same(plain)
    assert sum(checked["textline_orientation_angles"]) > sum(plain["textline_orientation_angles"])
    assert all("".join(words) == text for words, text in zip(checked["text_word"], checked["rec_text"]))
    # on the upright page nothing is turned
    again = next(pipeline.predict(image, use_textline_orientation=True))
    assert again["rec_text"] == upright["rec_text"] and not any(again["textline_orientation_angles"])


def test_unwarping_keeps_a_flat_page_readable(pipeline):
    image = cv2.imread(str(DEMO))
    res = next(pipeline.predict(image, use_doc_unwarping=True))
    assert res.page_img.shape == image.shape
    assert res["doc_preprocessor_res"]["angle"] == -1  # orientation was off
    assert "登机牌" in res["rec_text"]


@pytest.mark.parametrize("page", [np.zeros((1, 1, 3), np.uint8), np.full((300, 200, 3), 255, np.uint8),
                                  np.full((4, 3000, 3), 255, np.uint8)], ids=["1x1", "white", "strip"])
def test_degenerate_pages_pass_through_every_stage(pipeline, page):
    res = next(pipeline.predict(page, use_doc_orientation_classify=True, use_doc_unwarping=True,
                                use_textline_orientation=True))
    assert res["rec_text"] == [] and res["textline_orientation_angles"] == []
    assert res["doc_preprocessor_res"]["angle"] in (0, 90, 180, 270)


def test_cli_flags_in_paddleocr_form():
    from ocrflow.cli import build_parser

    args = build_parser().parse_args(["--pipeline", "OCR", "--use_textline_orientation", "--use_doc_unwarping", "False",
                                      "--ocr_version", "PP-OCRv6"])
    assert args.use_textline_orientation is True and args.use_doc_unwarping is False
    assert args.use_doc_orientation_classify is None  # not given: the YAML's
    assert args.ocr_version == "PP-OCRv6"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--use_textline_orientation", "maybe"])


def test_ocrv6_pipeline_config_is_bundled(tmp_path):
    from ocrflow.config import load

    conf, _ = load("OCRv6")
    assert conf.det_model == "PP-OCRv6_small_det" and conf.use_doc_orientation_classify
    assert conf.use_textline_orientation and not conf.use_doc_unwarping


def test_a_classifier_folder_given_as_the_detector_is_refused(tmp_path):
    """A PaddleX classifier folder (inference.yml with a Topk post-process) knows its task."""
    import shutil

    from ocrflow.models import resolve

    folder = tmp_path / "PP-LCNet_x1_0_doc_ori"
    folder.mkdir()
    shutil.copy(resolve("PP-LCNet_x1_0_doc_ori", "doc_ori").onnx, folder / "inference.onnx")
    (folder / "inference.yml").write_text("Global:\n  model_name: PP-LCNet_x1_0_doc_ori\nPostProcess:\n  Topk:\n"
                                          "    topk: 1\n    label_list: ['0', '90', '180', '270']\n")
    with pytest.raises(ModelError, match="holds a doc_ori model"):
        create_pipeline("OCR", det_model=str(folder))
    pipe = create_pipeline("OCR", use_doc_orientation_classify=True, doc_orientation_classify_model=str(folder))
    turned = cv2.rotate(cv2.imread(str(DEMO)), cv2.ROTATE_90_COUNTERCLOCKWISE)
    assert next(pipe.predict(turned))["doc_preprocessor_res"]["angle"] == 270


@pytest.mark.skipif(__import__("shutil").which("pdftotext") is None, reason="poppler-utils not installed")
def test_cli_searchable_pdf_of_a_turned_scan(tmp_path):
    """With page orientation, the CLI's PDF is made of the turned-upright pages, so the text layer
    lands where its words are (on the PDF's own, sideways page it would not)."""
    import subprocess
    import sys

    from PIL import Image

    turned = cv2.rotate(cv2.imread(str(DEMO)), cv2.ROTATE_90_CLOCKWISE)
    source = tmp_path / "sideways.pdf"
    Image.fromarray(cv2.cvtColor(turned, cv2.COLOR_BGR2RGB)).save(source, "PDF", resolution=144.0)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ocrflow.cli", "--pipeline", "OCR", "--input", str(source),
                           "--use_doc_orientation_classify", "--save_path", str(out), "--output_format", "pdf",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import pikepdf

    with pikepdf.open(out / "sideways.pdf") as pdf:
        x0, y0, x1, y1 = (float(v) for v in pdf.pages[0].mediabox)
    assert x1 - x0 > y1 - y0  # the upright (landscape) page, not the sideways (portrait) one
    text = subprocess.run(["pdftotext", str(out / "sideways.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "BOARDING" in text
