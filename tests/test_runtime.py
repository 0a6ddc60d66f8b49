"""Which ONNX Runtime is installed, and the hints when the needed one is missing (no model is loaded)."""

import pytest

from ocrflow import engine
from ocrflow.engine import runtime
from ocrflow.errors import ConfigError, DeviceError


def _installed(monkeypatch, *dists):
    monkeypatch.setattr(runtime, "installed", lambda dist: dist in dists)


def test_gpu_hint_never_installs_over_the_cpu_build(monkeypatch):
    _installed(monkeypatch, "onnxruntime")
    assert runtime.gpu_hint() == "replace the CPU build: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
    _installed(monkeypatch, "onnxruntime", "onnxruntime-gpu")
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in runtime.gpu_hint()
    _installed(monkeypatch)
    assert runtime.gpu_hint().startswith("pip install 'ocrflow[gpu]'")


def test_no_onnxruntime_is_a_clear_error(monkeypatch):
    real = runtime.has_module
    monkeypatch.setattr(engine, "has_module", lambda name: False if name == "onnxruntime" else real(name))
    _installed(monkeypatch)
    with pytest.raises(ConfigError, match=r"ocrflow\[cpu\]"):
        engine.load_model("x.onnx", "cpu", backend="onnxruntime")
    with pytest.raises(DeviceError, match=r"ocrflow\[gpu\]"):
        engine.load_model("x.onnx", "gpu", backend="auto")


def test_cpu_picks_openvino_when_installed(monkeypatch):
    monkeypatch.setattr(engine, "has_module", lambda name: name == "openvino")
    assert engine.pick_backend("auto", engine.parse_device("cpu")) == "openvino"
    assert engine.pick_backend("auto", engine.parse_device("gpu")) == "onnxruntime"
