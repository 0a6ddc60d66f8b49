"""Inference engines behind one small interface: load a model, run it, read its metadata."""

from .device import Device, parse_device
from .onnxruntime import OrtModel

__all__ = ["Device", "OrtModel", "load_model", "parse_device"]


def load_model(path, device: Device | str = "cpu", threads: int | None = None) -> OrtModel:
    """Load an ONNX model file on a device."""
    dev = parse_device(device) if isinstance(device, str) else device
    return OrtModel(path, dev, threads=threads)
