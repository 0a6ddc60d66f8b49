"""Device names: cpu, gpu, gpu:N. Anything else is a clear error, never a silent fall-back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DeviceError

_UNSUPPORTED = ("npu", "xpu", "mlu", "dcu", "mps", "rocm", "ipu")


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "gpu"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"gpu:{self.index}"


def parse_device(name: str | None) -> Device:
    """'cpu' | 'gpu' | 'gpu:N' (also 'cuda', 'cuda:N') -> Device."""
    text = (name or "cpu").strip().lower()
    if text == "cpu":
        return Device("cpu")
    match = re.fullmatch(r"(gpu|cuda)(?::(\d+))?", text)
    if match:
        return Device("gpu", int(match.group(2) or 0))
    if re.fullmatch(r"(gpu|cuda):\d+(,\d+)+", text):
        raise DeviceError(
            f"device {name!r}: one pipeline runs on one GPU; start one pipeline (or server worker) per GPU"
        )
    kind = text.split(":")[0]
    if kind in _UNSUPPORTED:
        raise DeviceError(f"device {name!r} is not supported by ocrflow: use 'cpu', 'gpu' or 'gpu:N' (NVIDIA CUDA)")
    raise DeviceError(f"unknown device {name!r}: use 'cpu', 'gpu' or 'gpu:N'")
