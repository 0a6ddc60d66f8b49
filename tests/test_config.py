"""Pipeline configuration: the bundled OCR.yaml, the 3.0-beta aliases, validation that names the key,
create_pipeline precedence, per-call predict() overrides and their thread safety."""

from __future__ import annotations

import dataclasses
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO

from ocrflow import ConfigError, create_pipeline
from ocrflow import config as cfg
from ocrflow.det import DetParams


def _yaml(tmp_path: Path, body: str, name: str = "pipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _pipeline_yaml(tmp_path: Path, *lines: str) -> Path:
    body = "Global:\n  pipeline_name: OCR\nPipeline:\n" + "".join(f"  {line}\n" for line in lines)
    return _yaml(tmp_path, body)


def _names(message: str, key: str) -> bool:
    """The message names `key` (quoted or not, e.g. Pipeline.foo or Pipeline.'foo')."""
    section, _, name = key.rpartition(".")
    prefix = re.escape(section) + r"\.['\"]?" if section else r"\b"
    return re.search(prefix + re.escape(name) + r"\b", message) is not None


# -- the bundled YAML -----------------------------------------------------------------------------


def test_bundled_yaml_has_the_paddlex_defaults():
    conf, extra = cfg.load("OCR")
    assert conf.det == DetParams(
        limit_side_len=960, limit_type="max", max_side_limit=4000, thresh=0.3, box_thresh=0.6, unclip_ratio=1.5
    )
    assert conf.rec_batch_size == 6
    assert conf.det_model == "PP-OCRv4_mobile_det"
    assert conf.rec_model == "PP-OCRv4_mobile_rec"
    assert extra == {}


def test_bundled_defaults_equal_code_defaults():
    conf, _ = cfg.load("OCR")
    assert conf.det == cfg.PipelineConfig().det
    assert conf.rec_batch_size == cfg.PipelineConfig().rec_batch_size


def test_yaml_path_is_loaded(tmp_path):
    path = _pipeline_yaml(tmp_path, "rec_batch_size: 3")
    conf, _ = cfg.load(path)
    assert conf.rec_batch_size == 3
    assert cfg.load(str(path))[0] == conf


# -- aliases and detection keys -------------------------------------------------------------------


def test_beta1_aliases(tmp_path):
    path = _pipeline_yaml(
        tmp_path,
        "text_det_model: PP-OCRv4_server_det",
        "text_rec_model: PP-OCRv4_server_rec",
        "text_rec_batch_size: 1",
        "device: cpu",
    )
    conf, _ = cfg.load(path)
    assert conf.det_model == "PP-OCRv4_server_det"
    assert conf.rec_model == "PP-OCRv4_server_rec"
    assert conf.rec_batch_size == 1
    assert conf.device == "cpu"


def test_detection_keys_land_in_det_params(tmp_path):
    path = _pipeline_yaml(
        tmp_path,
        "limit_side_len: 736",
        "limit_type: min",
        "max_side_limit: 3000",
        "thresh: 0.2",
        "box_thresh: 0.5",
        "unclip_ratio: 2.0",
    )
    conf, _ = cfg.load(path)
    assert conf.det == DetParams(
        limit_side_len=736, limit_type="min", max_side_limit=3000, thresh=0.2, box_thresh=0.5, unclip_ratio=2.0
    )


def test_prefixed_detection_aliases(tmp_path):
    path = _pipeline_yaml(tmp_path, "text_det_limit_side_len: 640", "det_box_thresh: 0.7", "text_det_unclip_ratio: 2")
    det = cfg.load(path)[0].det
    assert (det.limit_side_len, det.box_thresh, det.unclip_ratio) == (640, 0.7, 2)
    assert det.thresh == 0.3  # untouched keys keep their defaults


def test_serving_section_is_passed_through(tmp_path):
    path = _yaml(
        tmp_path, "Global:\n  pipeline_name: OCR\nPipeline: {}\nServing:\n  extra:\n    max_num_input_imgs: 3\n"
    )
    conf, extra = cfg.load(path)
    assert conf == cfg.PipelineConfig()
    assert extra == {"Serving": {"extra": {"max_num_input_imgs": 3}}}


# -- validation -----------------------------------------------------------------------------------


def test_unknown_pipeline_key_is_named(tmp_path):
    path = _pipeline_yaml(tmp_path, "det_model: PP-OCRv4_mobile_det", "foo: 1")
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert _names(str(info.value), "Pipeline.foo"), str(info.value)
    assert str(path) in str(info.value)


def test_unknown_global_key_is_named(tmp_path):
    path = _yaml(tmp_path, "Global:\n  pipeline_name: OCR\n  bar: 1\nPipeline: {}\n")
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert _names(str(info.value), "Global.bar"), str(info.value)


def test_unknown_section_is_named(tmp_path):
    path = _yaml(tmp_path, "Global:\n  pipeline_name: OCR\nPipline:\n  rec_batch_size: 2\n")
    with pytest.raises(ConfigError, match="Pipline"):
        cfg.load(path)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("rec_batch_size: 0", "rec_batch_size"),
        ("rec_batch_size: -1", "rec_batch_size"),
        ("rec_batch_size: two", "rec_batch_size"),
        ("text_rec_batch_size: 2.5", "rec_batch_size"),
        ("limit_type: bogus", "limit_type"),
        ("limit_side_len: 0", "limit_side_len"),
        ("thresh: 2", "thresh"),
        ("box_thresh: -0.5", "box_thresh"),
        ("unclip_ratio: 0", "unclip_ratio"),
        ("det_model: 5", "det_model"),
        ("use_hpip: maybe", "use_hpip"),
    ],
)
def test_bad_values_name_the_key(tmp_path, line, key):
    path = _pipeline_yaml(tmp_path, line)
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    assert _names(str(info.value), key), str(info.value)


def test_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        cfg.load(_yaml(tmp_path, "- just\n- a list\n"))


def test_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="YAML"):
        cfg.load(_yaml(tmp_path, "Pipeline: [unclosed\n"))


def test_unknown_pipeline_name():
    with pytest.raises(ConfigError, match="unknown pipeline 'table_recognition'"):
        create_pipeline("table_recognition")


def test_unsupported_pipeline_name_in_yaml(tmp_path):
    path = _yaml(tmp_path, "Global:\n  pipeline_name: PP-ChatOCRv3\nPipeline: {}\n")
    with pytest.raises(ConfigError, match="PP-ChatOCRv3"):
        create_pipeline(str(path))


def test_missing_yaml_path(tmp_path):
    missing = tmp_path / "nowhere" / "OCR.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        create_pipeline(str(missing))


def test_unknown_create_pipeline_argument():
    with pytest.raises(ConfigError, match="foo"):
        create_pipeline("OCR", device="cpu", foo=1)


# -- create_pipeline precedence -------------------------------------------------------------------


def test_arguments_override_the_yaml(tmp_path):
    path = _pipeline_yaml(
        tmp_path,
        "det_device: gpu:3",  # overridden by device='cpu': no GPU is needed
        "rec_device: gpu:3",
        "rec_batch_size: 3",
        "limit_side_len: 640",
        "box_thresh: 0.5",
    )
    pipe = create_pipeline(str(path), device="cpu", limit_side_len=1280, rec_batch_size=2)
    conf = pipe.config
    assert conf.device == "cpu"
    assert conf.det_device is None and conf.rec_device is None
    assert conf.det.limit_side_len == 1280  # argument wins
    assert conf.rec_batch_size == 2  # argument wins
    assert conf.det.box_thresh == 0.5  # YAML value kept
    assert conf.det.thresh == 0.3  # default kept


def test_bad_create_pipeline_argument_value(tmp_path):
    with pytest.raises(ConfigError, match="limit_side_len"):
        create_pipeline("OCR", device="cpu", limit_side_len=0)


# -- per-call overrides ---------------------------------------------------------------------------


def test_predict_override_changes_result_but_not_config(pipeline):
    before = pipeline.config
    det_before = pipeline.config.det
    base = next(pipeline.predict(str(DEMO)))
    strict = next(pipeline.predict(str(DEMO), box_thresh=0.85))
    assert 0 < len(strict["dt_polys"]) < len(base["dt_polys"]) == 32
    assert pipeline.config is before and pipeline.config == before
    assert pipeline.config.det is det_before and det_before.box_thresh == 0.6
    again = next(pipeline.predict(str(DEMO)))
    np.testing.assert_array_equal(again["dt_polys"], base["dt_polys"])


def test_predict_unknown_keyword(pipeline):
    with pytest.raises(ConfigError, match="foo"):
        list(pipeline.predict(str(DEMO), foo=1))


def test_predict_bad_override_value(pipeline):
    with pytest.raises(ConfigError, match="box_thresh"):
        list(pipeline.predict(str(DEMO), box_thresh=2))
    assert pipeline.config.det.box_thresh == 0.6


def test_predict_none_override_means_default(pipeline):
    conf = pipeline.config
    params, batch = pipeline.call_settings({"box_thresh": None, "limit_side_len": None})
    assert params == conf.det and batch == conf.rec_batch_size


THREAD_OVERRIDES = [
    {},
    {"limit_side_len": 480},
    {"box_thresh": 0.85},
    {"limit_type": "min", "limit_side_len": 1024},
]


def _summary(result) -> tuple:
    return (result["dt_polys"].tolist(), list(result["rec_text"]), list(result["rec_score"]))


def test_predict_is_thread_safe_with_overrides(pipeline):
    expected = [_summary(next(pipeline.predict(str(DEMO), **kw))) for kw in THREAD_OVERRIDES]
    # the overrides really give different answers, so a mix-up between threads would show
    assert len({str(e[0]) for e in expected}) == len(expected)

    barrier = threading.Barrier(len(THREAD_OVERRIDES))

    def work(kw: dict) -> tuple:
        barrier.wait(timeout=30)
        return _summary(next(pipeline.predict(str(DEMO), **kw)))

    config_before = dataclasses.asdict(pipeline.config)
    with ThreadPoolExecutor(max_workers=len(THREAD_OVERRIDES)) as pool:
        got = list(pool.map(work, THREAD_OVERRIDES))
    for kw, g, e in zip(THREAD_OVERRIDES, got, expected):
        assert g[0] == e[0], kw
        assert g[1] == e[1], kw
        np.testing.assert_allclose(g[2], e[2], rtol=0, atol=1e-6, err_msg=str(kw))
    assert dataclasses.asdict(pipeline.config) == config_before
