"""Inference engines behind one small interface: load a model, run it, read its metadata.

Backends: ONNX Runtime (CPU and NVIDIA GPUs) and OpenVINO (CPU). `auto` picks OpenVINO on the CPU
when it is installed, else ONNX Runtime; the pipeline's exact path measures both per model where
both are installed (calibrate.py).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import ConfigError, DeviceError
from .device import Device, parse_device
from .runtime import gpu_hint, has_module, ort_missing_hint

__all__ = ["BACKENDS", "Device", "Engine", "OrtModel", "load_model", "parse_device", "pick_backend"]


class Engine(Protocol):
    """What a stage needs from a model, whatever runs it (ONNX Runtime, OpenVINO, the training
    path's torch module: train/trainer.py TorchEngine)."""

    takes_pixels: bool  # True: uint8 N x H x W x C pixels in, normalised inside the model
    returns_logits: bool  # True: the model's final sigmoid was left out (its caller applies it)
    bf16_probs: bool  # True: the first output is a softmax's, in bfloat16 bit patterns as uint16
    input_shape: list  # the first input's shape (ints, or names / "dynamic" for free axes)
    input_dtype: np.dtype
    output_shape: list

    @property
    def metadata(self) -> dict[str, str]: ...  # the ONNX custom metadata the stages read ("character")

    streams: int  # requests the engine runs side by side (1: one at a time)

    def run(self, x: np.ndarray, copy: bool = True) -> np.ndarray: ...  # the first output

    # The first output, as a job (jobs.py): .result() waits for it, .release() hands its buffers
    # back. Up to `streams` jobs run side by side; jobs.RunsNow runs it at once.
    def submit(self, x: np.ndarray): ...

BACKENDS = ("auto", "onnxruntime", "openvino")


def pick_backend(backend: str, device: Device) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if device.kind == "cpu" and has_module("openvino"):
        return "openvino"
    return "onnxruntime"


def __getattr__(name: str):
    # ONNX Runtime is imported only when a model runs on it: a CPU install may have OpenVINO alone.
    if name == "OrtModel":
        from .onnxruntime import OrtModel

        return OrtModel
    raise AttributeError(name)


def load_model(path, device: Device | str = "cpu", threads: int | None = None, backend: str = "auto",
               precision: str = "f32", shape_cache: int | None = None, pixels: tuple | None = None,
               streams: int = 1, logits: bool = False, bf16_probs: bool = False, deconv_as_conv: bool = False):
    """Load an ONNX model file on a device with the chosen backend.

    shape_cache: input shapes whose kernels OpenVINO keeps (OvModel's default when None).
    pixels: (alpha, beta) to normalise uint8 NHWC pixels in the graph (OpenVINO only; a model
    that does so has `takes_pixels` True).
    streams: requests run side by side, splitting the threads (OpenVINO only; others run one at a time).
    logits: leave out a final Sigmoid, where there is one (OpenVINO only; `returns_logits` says so).
    bf16_probs: a final Softmax's output in bfloat16, as uint16 bit patterns (OpenVINO only;
    `bf16_probs` says so).
    deconv_as_conv: 2 x 2 transposed convolutions as 1 x 1 convolutions + depth-to-space (OpenVINO only).
    """
    dev = parse_device(device) if isinstance(device, str) else device
    chosen = pick_backend(backend, dev)
    if chosen == "openvino":
        from .openvino import OvModel

        return OvModel(path, dev, threads=threads, precision=precision, shape_cache=shape_cache, pixels=pixels,
                       streams=streams, logits=logits, bf16_probs=bf16_probs, deconv_as_conv=deconv_as_conv)
    if not has_module("onnxruntime"):
        if dev.kind == "gpu":
            raise DeviceError(f"device {dev} needs ONNX Runtime's CUDA build: {gpu_hint()}")
        raise ConfigError(ort_missing_hint())
    from .onnxruntime import OrtModel

    return OrtModel(path, dev, threads=threads)
