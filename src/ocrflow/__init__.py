"""ocrflow: the PaddleX General OCR pipeline (PP-OCR detection + recognition) on ONNX Runtime."""

from .errors import Cancelled, ConfigError, DeviceError, InputError, ModelError, OcrflowError
from .limits import Limits
from .pipeline import OCRPipeline, create_pipeline
from .result import OCRResult

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ConfigError",
    "DeviceError",
    "InputError",
    "Limits",
    "ModelError",
    "OCRPipeline",
    "OCRResult",
    "OcrflowError",
    "create_pipeline",
]
