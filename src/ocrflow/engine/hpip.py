"""High-performance inference (use_hpip): the fastest backend this hardware offers.

CPU: OpenVINO in bf16 where the CPU computes bf16 natively (AMX or AVX512-BF16), else OpenVINO f32.
NVIDIA GPU: ONNX Runtime's CUDA provider. The pipeline also pads inputs up to a few shapes and drops
recognition's 320 px minimum width (shapes.py, pipeline.py). Both trade a little accuracy for speed;
`ocrflow eval` measures how much (docs/performance.md). int8 (NNCF post-training quantisation) was
measured and left out: it lost 0.9 (detection) to 8 (recognition) points of end-to-end accuracy
on SROIE and ran no faster than bf16.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

from .device import Device

log = logging.getLogger("ocrflow")

# Input shapes whose kernels each model keeps (OpenVINO). use_hpip pads inputs to few shapes
# (shapes.py): recognition meets at most 37 widths x 6 batch sizes, the common ones fit in 128
# (256 was 6% faster on documents for 160 MiB more); a detection shape holds ~5 MB.
SHAPE_CACHE = {"det": 16, "rec": 128}

# oneDNN, under OpenVINO's CPU plugin, keeps the kernels it generates in one process-wide cache of
# 1024 (ONEDNN_PRIMITIVE_CACHE_CAPACITY). Each new input shape adds dozens, so recognition's shapes
# evicted detection's kernels and both re-generated kernels for shapes seen before. 2048 cuts the
# model time of a second pass over 20 photos by 26% (3072 and 4096: no better) for +30-70 MiB; 16384
# cost 1 GiB in the memory soak. oneDNN reads the setting once, at the process's first kernel.
PRIMITIVE_CACHE = 2048


def widen_kernel_cache() -> None:
    """Raise oneDNN's kernel cache for this process, unless the user has set it."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE))


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    reason: str


def cpu_bf16() -> bool:
    """True if OpenVINO reports native bf16 compute on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def choose(device: Device) -> Choice:
    if device.kind == "gpu":
        return Choice("onnxruntime", "f32", "NVIDIA GPU: ONNX Runtime CUDA provider")
    if importlib.util.find_spec("openvino") is None:
        return Choice("onnxruntime", "f32", "OpenVINO is not installed: ONNX Runtime f32")
    if cpu_bf16():
        return Choice("openvino", "bf16", "CPU computes bf16 natively (AMX / AVX512-BF16): OpenVINO bf16")
    return Choice("openvino", "f32", "CPU has no native bf16: OpenVINO f32")
