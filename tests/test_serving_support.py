"""Helpers of the serving tests (imported by tests/test_serving*.py; holds no tests itself).

Servers are real: uvicorn on a free loopback port in a thread of the test process, so a test can
also look inside (the app's runtime) and spy on the fetcher's only connect function.
"""

from __future__ import annotations

import base64
import http.server
import io
import ipaddress
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving extra is not installed: pip install -e '.[test]'")
import uvicorn  # noqa: E402

from ocrflow import fetch as fetch_module  # noqa: E402
from ocrflow.serving.app import create_app  # noqa: E402
from ocrflow.serving.settings import ServeSettings  # noqa: E402

DATA = Path(__file__).parent / "data"
DEMO = DATA / "general_ocr_002.png"  # the seed's boarding pass (a JPEG despite its name), 896 x 528


def demo_bytes() -> bytes:
    return DEMO.read_bytes()


def demo_b64() -> str:
    return base64.b64encode(demo_bytes()).decode("ascii")


def two_page_pdf() -> bytes:
    """A 2-page PDF, each page the demo image at 144 dpi: rendered at scale 2 (144 dpi) every page
    is 896 x 528 pixels again."""
    from PIL import Image

    with Image.open(DEMO) as im:
        page = im.convert("RGB")
    buf = io.BytesIO()
    page.save(buf, "PDF", save_all=True, append_images=[page.copy()], resolution=144.0)
    return buf.getvalue()


class LiveServer:
    """uvicorn serving `app` on host:free port, in a daemon thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:  # a wished-for port is taken: any free one
            self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    @property
    def runtime(self):
        return self.app.state.runtime


def serve(pipeline, **settings) -> LiveServer:
    return LiveServer(create_app(pipeline, ServeSettings(**settings)))


_SHARED: dict[str, LiveServer] = {}


def shared_server(pipeline, name: str = "default", **settings) -> LiveServer:
    """One server per configuration for the whole session (fixtures in several modules share it)."""
    if name not in _SHARED:
        _SHARED[name] = serve(pipeline, **settings).__enter__()
    return _SHARED[name]


# -- a small "remote" web server for URL inputs -----------------------------------------------

class RemoteFiles:
    """ThreadingHTTPServer on a loopback address: /demo.png, /demo (no extension), /doc.pdf,
    /redirect?to=URL (302), /loop (redirects to itself), /slow (stalls), /big (large), /missing (404).
    Records every request path it receives."""

    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[str] = []
        self.stall = threading.Event()
        owner = self
        pdf = two_page_pdf()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                owner.requests.append(self.path)
                path, _, query = self.path.partition("?")
                if path in ("/demo.png", "/demo"):
                    self._send(200, demo_bytes(), "image/jpeg")
                elif path == "/doc.pdf":
                    self._send(200, pdf, "application/pdf")
                elif path == "/redirect":
                    target = query.removeprefix("to=")
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path.startswith("/loop"):
                    self.send_response(302)
                    self.send_header("Location", "/loop.png")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/slow.png":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"\xff\xd8")
                    self.wfile.flush()
                    owner.stall.wait(10)
                elif path == "/big.png":
                    self._send(200, b"\0" * (2 * 1024 * 1024), "image/png")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RemoteFiles:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stall.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Canary:
    """A listener that only records connections: proof that nothing connected to it."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def connect_spy(monkeypatch):
    """Every connection the fetcher opens, recorded; anything but loopback is refused outright, so
    no test can ever send a packet to another address even if the checks were broken."""
    attempts: list[tuple[str, int]] = []
    real = fetch_module._open_socket

    def spy(address, port, timeout):
        attempts.append((address, port))
        if not ipaddress.ip_address(address).is_loopback:
            raise AssertionError(f"the fetcher tried to connect to {address}:{port}")
        return real(address, port, timeout)

    monkeypatch.setattr(fetch_module, "_open_socket", spy)
    return attempts
