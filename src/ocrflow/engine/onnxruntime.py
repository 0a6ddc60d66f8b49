"""ONNX Runtime backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import DeviceError, ModelError
from .device import Device
from .jobs import RunsNow
from .runtime import gpu_hint


def _session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena grows to the largest input seen and is reused: 1.4x faster than without on
    # recognition batches, with a bounded footprint (see the soak benchmark).
    opts.enable_cpu_mem_arena = True
    opts.log_severity_level = 3
    return opts


def _providers(device: Device) -> list:
    if device.kind == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise DeviceError(
            f"device {device} was asked for, but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}). {gpu_hint()}"
        )
    # DEFAULT conv search: EXHAUSTIVE re-searches for every new input width (slow OCR on GPU).
    cuda = {"device_id": device.index, "cudnn_conv_algo_search": "DEFAULT"}
    return [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]


class OrtModel(RunsNow):
    """One ONNX model in an ONNX Runtime session. `run` is thread-safe."""

    takes_pixels = False  # takes the normalised float32 NCHW input
    returns_logits = False
    bf16_probs = False

    def __init__(self, path: str | Path, device: Device, threads: int | None = None):
        self.path = Path(path)
        self.device = device
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=_session_options(threads), providers=_providers(device)
            )
        except DeviceError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            if device.kind == "gpu":
                raise DeviceError(f"could not start model {self.path.name} on {device}: {exc}") from exc
            raise ModelError(f"could not load ONNX model {self.path}: {exc}") from exc
        if device.kind == "gpu" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise DeviceError(f"onnxruntime did not place {self.path.name} on {device}")
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = list(first.shape)
        self.input_dtype = np.dtype(np.float16) if first.type == "tensor(float16)" else np.dtype(np.float32)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def output_shape(self) -> list:
        return list(self.session.get_outputs()[0].shape)

    def run(self, x: np.ndarray, copy: bool = True) -> np.ndarray:
        """The first output; always a fresh array (`copy` is for OvModel's interface)."""
        return self.session.run(None, {self.input_name: x})[0]
