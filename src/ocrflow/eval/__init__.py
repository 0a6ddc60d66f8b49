"""Evaluation: metrics as PaddleOCR defines them, dataset readers, and the runner."""

from .datasets import FORMATS, Sample, load
from .metrics import DetScore, E2EScore, GtLine, RecScore, match_image
from .runner import evaluate

__all__ = ["FORMATS", "DetScore", "E2EScore", "GtLine", "RecScore", "Sample", "evaluate", "load", "match_image"]
