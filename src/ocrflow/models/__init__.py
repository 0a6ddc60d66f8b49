"""Model registry, store (wheels, official archives, local folders) and Paddle-to-ONNX conversion."""

from .registry import MODELS, SEED_MODELS, ArchiveSource, Figures, ModelSpec, WheelSource
from .store import ModelFiles, fetch, home, is_cached, remove, resolve

__all__ = [
    "MODELS",
    "SEED_MODELS",
    "ArchiveSource",
    "Figures",
    "ModelFiles",
    "ModelSpec",
    "WheelSource",
    "fetch",
    "home",
    "is_cached",
    "remove",
    "resolve",
]
