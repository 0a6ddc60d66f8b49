"""The installed `ocrflow` console script: the seed's command lines with paddlex -> ocrflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import DEMO

OCRFLOW = Path(sys.executable).parent / "ocrflow"
SEED_KEYS = ["input_path", "page_index", "dt_polys", "dt_scores", "rec_text", "rec_score"]


def ocrflow(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([str(OCRFLOW), *map(str, args)], capture_output=True, text=True, encoding="utf-8",
                          cwd=cwd, env=env, timeout=timeout)


def printed_results(stdout: str) -> list[dict]:
    """The JSON documents printed one after another on stdout."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    text = stdout.strip()
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        out.append(doc)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_console_script_is_installed():
    assert OCRFLOW.is_file() and os.access(OCRFLOW, os.X_OK)


def test_seed_command_with_save_path(tmp_path):
    out = tmp_path / "output"
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--device", "cpu", "--save_path", out)
    assert proc.returncode == 0, proc.stderr
    assert "BOARDING" in proc.stdout
    (printed,) = printed_results(proc.stdout)
    assert list(printed) == SEED_KEYS
    assert printed["input_path"] == str(DEMO)
    assert "登机牌" in proc.stdout  # Chinese printed as is

    saved = json.loads((out / "general_ocr_002.json").read_text(encoding="utf-8"))
    assert list(saved) == SEED_KEYS
    assert saved == printed
    assert saved["page_index"] is None
    assert len(saved["dt_polys"]) == len(saved["rec_text"]) == len(saved["rec_score"]) == len(saved["dt_scores"])
    assert all(len(poly) == 4 and all(len(pt) == 2 and all(isinstance(v, int) for v in pt) for pt in poly)
               for poly in saved["dt_polys"])

    vis = cv2.imread(str(out / "general_ocr_002.png"), cv2.IMREAD_COLOR)
    assert vis is not None
    src = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    assert vis.shape == (src.shape[0], 2 * src.shape[1], 3)
    assert sorted(p.name for p in out.iterdir()) == ["general_ocr_002.json", "general_ocr_002.png"]


def test_quiet_prints_nothing(tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    path = tmp_path / "strip.png"
    cv2.imwrite(str(path), strip)
    proc = ocrflow("--pipeline", "OCR", "--input", path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("my_path")
    proc = ocrflow("--get_pipeline_config", "OCR", "--save_path", folder)
    assert proc.returncode == 0, proc.stderr
    assert "OCR.yaml" in proc.stdout
    return folder


def test_get_pipeline_config_writes_seed_yaml(config_dir):
    doc = yaml.safe_load((config_dir / "OCR.yaml").read_text(encoding="utf-8"))
    assert doc["Global"]["pipeline_name"] == "OCR"
    pipe = doc["Pipeline"]
    assert pipe["det_model"] == "PP-OCRv4_mobile_det" and pipe["rec_model"] == "PP-OCRv4_mobile_rec"
    assert pipe["rec_batch_size"] == 6
    assert pipe["det_device"] == "cpu" and pipe["rec_device"] == "cpu"


def test_get_pipeline_config_default_save_path(tmp_path):
    proc = ocrflow("--get_pipeline_config", "OCR", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "OCR.yaml").is_file()


def test_get_pipeline_config_unknown_name(tmp_path):
    proc = ocrflow("--get_pipeline_config", "Table", "--save_path", tmp_path)
    assert proc.returncode != 0
    assert "Table" in proc.stderr
    assert not any(tmp_path.iterdir())


def _texts(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    (printed,) = printed_results(proc.stdout)
    return printed["rec_text"]


def test_pipeline_yaml_and_flag_override(config_dir, tmp_path):
    texts = _texts(ocrflow("--pipeline", config_dir / "OCR.yaml", "--input", DEMO))
    assert "BOARDING" in texts and len(texts) >= 25

    doc = yaml.safe_load((config_dir / "OCR.yaml").read_text(encoding="utf-8"))
    doc["Pipeline"]["box_thresh"] = 0.99
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    few = _texts(ocrflow("--pipeline", strict, "--input", DEMO))
    assert len(few) <= len(texts) // 4

    restored = _texts(ocrflow("--pipeline", strict, "--input", DEMO, "--box_thresh", "0.6"))
    assert restored == texts


def test_yaml_global_input_is_used(config_dir, tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    cv2.imwrite(str(tmp_path / "strip.png"), strip)
    doc = yaml.safe_load((config_dir / "OCR.yaml").read_text(encoding="utf-8"))
    doc["Global"]["input"] = str(tmp_path / "strip.png")
    conf = tmp_path / "with_input.yaml"
    conf.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert "BOARDING" in _texts(ocrflow("--pipeline", conf))


def test_bad_yaml_key_is_named(config_dir, tmp_path):
    doc = yaml.safe_load((config_dir / "OCR.yaml").read_text(encoding="utf-8"))
    doc["Pipeline"]["det_modle"] = "x"
    conf = tmp_path / "typo.yaml"
    conf.write_text(yaml.safe_dump(doc), encoding="utf-8")
    proc = ocrflow("--pipeline", conf, "--input", DEMO)
    assert proc.returncode != 0
    assert "det_modle" in proc.stderr


@pytest.mark.parametrize("device", ["gpu:0", "gpu"])
def test_gpu_on_cpu_machine_is_an_error(device):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--device", device)
    assert proc.returncode != 0
    assert "CUDA" in proc.stderr or "GPU" in proc.stderr.upper()
    assert "BOARDING" not in proc.stdout  # no silent fall-back to the CPU


@pytest.mark.parametrize("device", ["npu:0", "xpu", "mlu:1"])
def test_other_devices_are_not_supported(device):
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--device", device)
    assert proc.returncode != 0
    assert "not supported" in proc.stderr
    assert device in proc.stderr


def test_missing_input_file(tmp_path):
    missing = tmp_path / "no_such_image.png"
    proc = ocrflow("--pipeline", "OCR", "--input", missing)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr
    assert proc.stdout.strip() == ""


def test_folder_with_one_bad_file(tmp_path):
    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), strip)
    (folder / "b_bad.jpg").write_bytes(b"this is not a jpeg")
    cv2.imwrite(str(folder / "sub" / "c.jpg"), strip)
    out = tmp_path / "out"
    proc = ocrflow("--pipeline", "OCR", "--input", folder, "--save_path", out)
    assert proc.returncode == 1
    printed = printed_results(proc.stdout)
    assert [p["input_path"] for p in printed] == [str(folder / "a.png"), str(folder / "sub" / "c.jpg")]
    assert all("BOARDING" in p["rec_text"] for p in printed)
    assert str(folder / "b_bad.jpg") in proc.stderr
    assert str(folder / "a.png") not in proc.stderr
    assert {"a.json", "c.json", "a.png", "c.jpg"} <= {p.name for p in out.iterdir()}


def test_no_pipeline_is_a_usage_error():
    proc = ocrflow("--input", DEMO)
    assert proc.returncode == 2
    assert "--pipeline" in proc.stderr


def test_bad_flag_value_is_a_usage_error():
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--box_thresh", "high")
    assert proc.returncode == 2
    assert "box_thresh" in proc.stderr


def test_out_of_range_flag_is_named():
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--box_thresh", "7")
    assert proc.returncode != 0
    assert "box_thresh" in proc.stderr


def test_help_lists_the_flags():
    proc = ocrflow("--help")
    assert proc.returncode == 0
    for flag in ("--pipeline", "--input", "--device", "--save_path", "--get_pipeline_config", "--limit_side_len",
                 "--limit_type", "--max_side_limit", "--thresh", "--box_thresh", "--unclip_ratio", "--rec_batch_size",
                 "--det_model", "--rec_model"):
        assert flag in proc.stdout, flag


def test_pdf_input_saves_one_file_per_page(tmp_path):
    from PIL import Image

    strip = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    im = Image.fromarray(np.ascontiguousarray(strip[:, :, ::-1]))
    pdf = tmp_path / "doc.pdf"
    im.save(pdf, "PDF", save_all=True, append_images=[im], resolution=144.0)
    out = tmp_path / "out"
    proc = ocrflow("--pipeline", "OCR", "--input", pdf, "--save_path", out)
    assert proc.returncode == 0, proc.stderr
    assert [p["page_index"] for p in printed_results(proc.stdout)] == [0, 1]
    assert {p.name for p in out.iterdir()} == {"doc_0.json", "doc_1.json", "doc_0.png", "doc_1.png"}


def test_save_path_that_is_a_file(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--save_path", target, "--quiet")
    assert proc.returncode != 0
    assert str(target) in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text() == "keep me"


def test_unwritable_save_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder is needed")
    proc = ocrflow("--pipeline", "OCR", "--input", DEMO, "--save_path", blocker / "out", "--quiet")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "ocrflow: error" in proc.stderr and "blocker" in proc.stderr


def test_limit_flags_and_url_allow(tmp_path):
    from conftest import serve_folder
    from hostile import render_bomb

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860])
    (folder / "b_bomb.pdf").write_bytes(render_bomb())
    proc = ocrflow("--pipeline", "OCR", "--input", folder, "--render_timeout", "1")
    assert proc.returncode == 1
    assert [p["input_path"] for p in printed_results(proc.stdout)] == [str(folder / "a.png")]
    assert "b_bomb.pdf" in proc.stderr and "render_timeout" in proc.stderr
    with serve_folder(folder) as base:
        url = f"{base}/a.png"
        refused = ocrflow("--pipeline", "OCR", "--input", url)
        assert refused.returncode == 1 and "url_allow" in refused.stderr and "loopback" in refused.stderr
        allowed = ocrflow("--pipeline", "OCR", "--input", url, "--url_allow", "127.0.0.1")
        assert allowed.returncode == 0, allowed.stderr
        assert "BOARDING" in printed_results(allowed.stdout)[0]["rec_text"]
