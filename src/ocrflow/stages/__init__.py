"""The pipeline's stages. Each owns its model, its pre- and post-processing and its settings;
OCRPipeline composes them:

    page -> [DocOrientation] -> [Unwarper] -> TextDetector -> crops -> [LineOrientation]
         -> TextRecognizer

The bracketed stages are PaddleX 3.x's, off unless asked for (use_doc_orientation_classify,
use_doc_unwarping, use_textline_orientation). Array work is done by pure functions beside each
stage, tested without a model.
"""

from .detector import TextDetector
from .orientation import DocOrientation, LineOrientation, rotate_image
from .recognizer import TextRecognizer
from .unwarp import Unwarper

__all__ = ["DocOrientation", "LineOrientation", "TextDetector", "TextRecognizer", "Unwarper", "rotate_image"]
