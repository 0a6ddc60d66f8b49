"""Model store: names from wheels (verified, atomic), local paths, and clear errors."""

import shutil
from pathlib import Path

import pytest

from ocrflow import ModelError
from ocrflow.models import MODELS, home, resolve, store

DET = MODELS["PP-OCRv4_mobile_det"]
WHEEL = DET.sources[0].wheel


@pytest.fixture()
def cached_files(pipeline):
    """The default models are in the user's cache once the session pipeline exists."""
    return home()


@pytest.fixture()
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OCRFLOW_OFFLINE", "1")
    return tmp_path / "home"


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_named_model_from_cached_wheel_is_verified(cached_files, empty_home):
    wheel = cached_files / "wheels" / WHEEL
    if not wheel.is_file():
        pytest.skip("the model was taken from an installed distribution, no wheel cached")
    (empty_home / "wheels").mkdir(parents=True)
    shutil.copy(wheel, empty_home / "wheels" / WHEEL)
    files = resolve("PP-OCRv4_mobile_det", "det")
    assert files.onnx == empty_home / "models" / "PP-OCRv4_mobile_det" / "inference.onnx"
    assert store.sha256(files.onnx) == DET.sources[0].member_sha256


def test_offline_without_cache_names_model_and_sources(empty_home):
    with pytest.raises(ModelError) as err:
        resolve("PP-OCRv4_mobile_det", "det")
    text = str(err.value)
    assert "PP-OCRv4_mobile_det" in text
    assert "rapidocr-onnxruntime==1.4.4" in text and "OCRFLOW_OFFLINE" in text
    assert not (empty_home / "models" / "PP-OCRv4_mobile_det" / "inference.onnx").exists()


def test_wheel_with_wrong_hash_is_refused_and_leaves_nothing(empty_home):
    (empty_home / "wheels").mkdir(parents=True)
    (empty_home / "wheels" / WHEEL).write_bytes(b"not the real wheel")
    with pytest.raises(ModelError, match="wrong hash"):
        resolve("PP-OCRv4_mobile_det", "det")
    assert _leftovers(empty_home / "models") == []


def test_killed_write_leaves_no_partial_model(tmp_path):
    target = tmp_path / "m" / "inference.onnx"

    def dies_midway(f):
        f.write(b"half a model")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store._write_atomic(target, dies_midway)
    assert _leftovers(tmp_path / "m") == []


def test_local_onnx_file_never_touches_the_store(cached_files, empty_home, tmp_path):
    src = cached_files / "models" / "PP-OCRv4_mobile_rec" / "inference.onnx"
    local = tmp_path / "mine" / "rec.onnx"
    local.parent.mkdir()
    shutil.copy(src, local)
    files = resolve(str(local), "rec")
    assert files.onnx == local and files.chars is None
    assert not empty_home.exists()


def test_local_model_dir_reads_paddlex_dictionary(cached_files, tmp_path):
    folder = tmp_path / "my_rec"
    folder.mkdir()
    shutil.copy(cached_files / "models" / "PP-OCRv4_mobile_rec" / "inference.onnx", folder / "inference.onnx")
    (folder / "inference.yml").write_text(
        "Global:\n  model_name: PP-OCRv4_mobile_rec\nPostProcess:\n  name: CTCLabelDecode\n"
        "  character_dict:\n  - a\n  - b\n  - '1'\n",
        encoding="utf-8",
    )
    files = resolve(str(folder), "rec")
    assert files.onnx == folder / "inference.onnx"
    assert files.chars == ("a", "b", "1")


def test_paddle_format_dir_without_paddle2onnx_says_how_to_install(tmp_path, monkeypatch):
    from ocrflow.models import convert

    (tmp_path / "inference.pdmodel").write_bytes(b"x")
    (tmp_path / "inference.pdiparams").write_bytes(b"x")
    monkeypatch.setattr(convert, "version", lambda: None)
    with pytest.raises(ModelError, match=r"paddle2onnx is not installed: pip install 'ocrflow\[convert\]'"):
        resolve(str(tmp_path), "det")


@pytest.mark.parametrize(
    "ref, task, message",
    [
        ("PP-OCRv9_nano_det", "det", "unknown model 'PP-OCRv9_nano_det'"),
        ("PP-OCRv4_mobile_rec", "det", "is a rec model"),
        ("./missing/model.onnx", "det", "does not exist"),
    ],
)
def test_bad_model_references(ref, task, message):
    with pytest.raises(ModelError, match=message):
        resolve(ref, task)


def test_server_models_offline_name_their_official_archive(empty_home):
    spec = MODELS["PP-OCRv4_server_det"]
    with pytest.raises(ModelError) as err:
        resolve("PP-OCRv4_server_det", "det")
    assert spec.archive.url in str(err.value) and "OCRFLOW_OFFLINE" in str(err.value)
    assert _leftovers(empty_home / "models") == []


def test_pipeline_with_local_model_dir_matches_named_model(pipeline, cached_files, tmp_path):
    from conftest import DEMO

    from ocrflow import create_pipeline

    folder = tmp_path / "det"
    folder.mkdir()
    shutil.copy(cached_files / "models" / "PP-OCRv4_mobile_det" / "inference.onnx", folder / "inference.onnx")
    local = create_pipeline("OCR", det_model=str(folder))
    a, b = next(local.predict(str(DEMO))), next(pipeline.predict(str(DEMO)))
    assert a["dt_polys"].tolist() == b["dt_polys"].tolist()
    assert a["rec_text"] == b["rec_text"]


def test_ppocrv5_models_by_name_read_the_demo():
    from conftest import DEMO

    from ocrflow import create_pipeline

    v5 = create_pipeline("OCR", det_model="PP-OCRv5_mobile_det", rec_model="PP-OCRv5_mobile_rec")
    assert len(v5.char_table) == 18385 and v5.char_table[0] == "blank" and v5.char_table[-1] == " "
    texts = next(v5.predict(str(DEMO)))["rec_text"]
    assert "登机牌" in texts and "BOARDING PASS" in texts and "ZHANGQIWEI" in texts
