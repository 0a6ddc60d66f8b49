"""OpenVINO backend (CPU): the fastest exact path on x86 CPUs, and bf16 for use_hpip."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ModelError
from .device import Device

METADATA_KEYS = ("character",)  # the ONNX metadata the pipeline reads


class OvModel:
    """One ONNX model compiled by OpenVINO for the CPU. `run` is thread-safe (a request per thread)."""

    def __init__(self, path: str | Path, device: Device, threads: int | None = None, precision: str = "f32",
                 shape_cache: int | None = None):
        import openvino as ov

        if device.kind != "cpu":
            raise DeviceError(f"the OpenVINO backend runs on the CPU only, not on {device}")
        self.path = Path(path)
        self.device = device
        self.precision = precision
        core = ov.Core()
        # Every new input shape adds compiled kernels to a cache (5000 entries by default): with
        # OCR's ever-changing shapes that is memory growing without end, so keep it small.
        if shape_cache is None:
            shape_cache = int(os.environ.get("OCRFLOW_OV_CACHE", "16"))
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                  "CPU_RUNTIME_CACHE_CAPACITY": shape_cache}
        if precision == "bf16":
            # OpenVINO's generated subgraph kernels ("snippets") are compiled per shape; without
            # them bf16 prepares a new shape ~1.5x faster and runs as fast (f32: no difference).
            config["SNIPPETS_MODE"] = "DISABLE"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.settings = dict(config)  # what OpenVINO was asked for (tests, logs)
        try:
            self._model = core.read_model(str(self.path))
            self._compiled = core.compile_model(self._model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise ModelError(f"OpenVINO could not load {self.path}: {exc}") from exc
        self._local = threading.local()
        self.output_shape = [d.get_length() if d.is_static else "dynamic"
                             for d in self._model.outputs[0].get_partial_shape()]

    @property
    def metadata(self) -> dict[str, str]:
        out = {}
        for key in METADATA_KEYS:
            try:
                out[key] = self._model.get_rt_info(["framework", key]).astype(str)
            except Exception:  # key absent
                continue
        return out

    def run(self, x: np.ndarray, copy: bool = True) -> np.ndarray:
        """The first output. copy=False returns a view of the request's own output buffer (no copy
        of the score map or the probabilities): this thread's next `run` overwrites it, so use it
        before then. The input is read in place, not copied, and must stay unchanged until then."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request.infer({0: x}, share_inputs=True, share_outputs=not copy)[0]
