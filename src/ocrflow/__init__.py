"""ocrflow: the PaddleX General OCR pipeline (PP-OCR detection + recognition) on ONNX Runtime."""

from .errors import ConfigError, DeviceError, InputError, ModelError, OcrflowError
from .pipeline import OCRPipeline, create_pipeline
from .result import OCRResult

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DeviceError",
    "InputError",
    "ModelError",
    "OCRPipeline",
    "OCRResult",
    "OcrflowError",
    "create_pipeline",
]
