"""Shared fixtures: one pipeline for the whole session (the default PP-OCRv4 mobile models)."""

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
DEMO = DATA / "general_ocr_002.png"  # the seed's boarding pass (a JPEG despite its name)


@pytest.fixture(scope="session")
def pipeline():
    from ocrflow import create_pipeline

    return create_pipeline("OCR", device="cpu")


@contextlib.contextmanager
def serve_folder(root):
    """A quiet local HTTP server on 127.0.0.1 (free port) serving a folder; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    """Loopback URLs must not go through a proxy set in the environment."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pipeline_v6():
    """The OCRv6 pipeline: PP-OCRv6 small with page and text line orientation."""
    from ocrflow import create_pipeline

    return create_pipeline("OCRv6", device="cpu")
