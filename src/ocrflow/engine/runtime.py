"""Which inference runtimes are installed, and what to run when the needed one is missing.

`onnxruntime` (CPU build) and `onnxruntime-gpu` both install the `onnxruntime` module into the same
folder: with both present, whichever was installed last wins and uninstalling one breaks the other.
So the hints below never say "install ocrflow[gpu]" on top of a CPU build.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

ORT_CPU, ORT_GPU = "onnxruntime", "onnxruntime-gpu"


def installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def gpu_hint() -> str:
    """The commands that leave onnxruntime-gpu as the only ONNX Runtime."""
    if installed(ORT_CPU) and installed(ORT_GPU):
        return (f"both {ORT_CPU} and {ORT_GPU} are installed and share one folder: "
                f"pip uninstall -y {ORT_CPU} {ORT_GPU} && pip install {ORT_GPU}")
    if installed(ORT_CPU):
        return f"replace the CPU build: pip uninstall -y {ORT_CPU} && pip install {ORT_GPU}"
    if installed(ORT_GPU):
        return (f"{ORT_GPU} is installed but has no CUDA provider: reinstall it for this CUDA "
                f"(pip install --force-reinstall --no-deps {ORT_GPU}) and check its CUDA / cuDNN libraries")
    return f"pip install 'ocrflow[gpu]'   (installs {ORT_GPU} alone)"


def ort_missing_hint() -> str:
    """For backend onnxruntime on the CPU when no ONNX Runtime is installed."""
    return (f"ONNX Runtime is not installed: pip install 'ocrflow[cpu]' (the CPU build, {ORT_CPU}) "
            f"or 'ocrflow[gpu]' ({ORT_GPU}, which runs on the CPU too); never both")
