"""The HTTP service: PaddleX basic-serving OCR API, metrics and web demo (`pip install 'ocrflow[serve]'`).

    from ocrflow import create_pipeline
    from ocrflow.serving import create_app, ServeSettings
    app = create_app(create_pipeline("OCR"), ServeSettings(threads=2))   # a FastAPI app

Command line: `ocrflow serve --help`.
"""

from .settings import ServeSettings


def create_app(pipeline, settings: ServeSettings | None = None):
    """See ocrflow.serving.app.create_app (imported here lazily: FastAPI is an optional extra)."""
    from .app import create_app as _create_app

    return _create_app(pipeline, settings)


__all__ = ["ServeSettings", "create_app"]
