"""Model registry and store."""

from .registry import MODELS, ModelSpec, WheelSource
from .store import ModelFiles, home, resolve

__all__ = ["MODELS", "ModelFiles", "ModelSpec", "WheelSource", "home", "resolve"]
