"""Hostile input, through the library and the service: lying PDFs, render bombs, page bombs, huge
declared sizes, internal URLs, a lone surrogate, a body that never ends. Each gets a clear error
(4xx from the service), a batch goes on past it, and the work it causes is bounded."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from conftest import DEMO
from hostile import huge_page, huge_png, lying_page_count, render_bomb, repeated_page, self_referencing_tree
from test_serving_support import RemoteFiles, connect_spy, serve  # noqa: F401  (fixture)

from ocrflow import Cancelled, InputError, Limits, create_pipeline, pdf
from ocrflow.fetch import FetchError

requests = pytest.importorskip("requests")

FAST_RENDER = Limits(render_timeout=1.0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def post(server, payload, timeout=60):
    return requests.post(f"{server.url}/ocr", json=payload, timeout=timeout)


def error_of(resp, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    message = resp.json()["errorMsg"]
    for word in words:
        assert word in message, (word, message)
    return message


def worker_pids() -> set[int]:
    """Live PDF renderer processes (children of this process running pdf_worker.py)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"pdf_worker.py" in cmd:
            pids.add(int(entry))
    return pids


@pytest.fixture(scope="module")
def small_png() -> bytes:
    image = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)[0:90, 400:860]
    return cv2.imencode(".png", image)[1].tobytes()


# -- 1. a PDF whose page tree lies --------------------------------------------------------------
@pytest.mark.parametrize("make", [lying_page_count, self_referencing_tree], ids=["count", "self"])
def test_lying_page_tree_is_an_input_error_and_the_folder_goes_on(pipeline, tmp_path, small_png, make):
    (tmp_path / "a.png").write_bytes(small_png)
    (tmp_path / "b.pdf").write_bytes(make())
    (tmp_path / "c.png").write_bytes(small_png)
    errors = []
    results = list(pipeline.predict(tmp_path, on_error=lambda label, exc: errors.append((label, exc))))
    names = [os.path.basename(r["input_path"]) for r in results]
    assert names[0] == "a.png" and names[-1] == "c.png"
    [(label, exc)] = errors
    assert label.endswith("b.pdf") and isinstance(exc, InputError)
    assert "page tree is broken" in str(exc) or "max_pages" in str(exc)


def test_lying_page_count_is_refused_before_rendering(pipeline):
    with pytest.raises(InputError, match=r"1000000 pages, above the limit of 1000 \(max_pages\)"):
        list(pipeline.predict(lying_page_count()))


# -- 3. a page that renders for minutes ---------------------------------------------------------
def test_render_bomb_is_stopped_at_render_timeout(pipeline):
    start = time.monotonic()
    with pytest.raises(InputError, match=r"rendering page 0 took longer than 1 s \(render_timeout\)"):
        list(pipeline.predict(render_bomb(), limits=FAST_RENDER))
    assert time.monotonic() - start < 12
    assert not worker_pids() - {w.proc.pid for w in pdf._idle}  # the busy renderer was killed


def test_cancel_stops_a_render_at_once(pipeline):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        list(pipeline.predict(render_bomb(), cancel=cancel))
    assert time.monotonic() - start < 10


# -- 4. page count and 5. pixels ----------------------------------------------------------------
def test_page_bomb_is_refused_and_the_limit_is_a_setting(pipeline):
    data = repeated_page(100_000)
    with pytest.raises(InputError, match=r"100000 pages, above the limit of 1000 \(max_pages\)"):
        list(pipeline.predict(data))
    cut = list(pipeline.predict(data, limits=Limits(max_pages=3, page_overflow="truncate")))
    assert [r["page_index"] for r in cut] == [0, 1, 2]


def test_default_pixel_limit_refuses_huge_png_from_its_header(pipeline):
    data = huge_png(19_999)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"399960001 pixels, above the limit of 100000000 \(raise max_pixels"):
        list(pipeline.predict(data))
    assert time.monotonic() - start < 10  # never decoded


def test_default_pixel_limit_refuses_huge_pdf_page(pipeline):
    with pytest.raises(InputError, match=r"20000 x 20000 pixels .* above the limit of 100000000 \(max_pixels\)"):
        list(pipeline.predict(huge_page(10_000)))


def test_byte_limit_on_files(tmp_path, pipeline, small_png):
    path = tmp_path / "x.png"
    path.write_bytes(small_png)
    with pytest.raises(InputError, match=r"larger than the 1000 byte limit \(max_bytes\)"):
        list(pipeline.predict(path, limits=Limits(max_bytes=1000)))


# -- 6. URLs in the library ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def remote():
    with RemoteFiles() as files:
        yield files


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/demo.png", "http://2130706433:{port}/demo.png",
                                 "http://[::ffff:127.0.0.1]:{port}/demo.png", "http://localhost:{port}/demo.png"])
def test_library_refuses_internal_urls_by_default(pipeline, remote, connect_spy, url):  # noqa: F811
    url = url.format(port=remote.url.rsplit(":", 1)[1])
    with pytest.raises(FetchError, match="url_allow") as info:
        list(pipeline.predict(url))
    assert info.value.status == 403 and str(info.value).startswith(url)
    assert connect_spy == []  # refused before any connection


def test_library_checks_every_redirect(pipeline, remote, connect_spy):  # noqa: F811
    url = f"{remote.url}/redirect?to=http://169.254.169.254/latest/meta-data/"
    limits = Limits(url_allow=("127.0.0.1",))
    with pytest.raises(FetchError, match="link-local"):
        list(pipeline.predict(url, limits=limits))
    assert all(address == "127.0.0.1" for address, _ in connect_spy)


def test_library_url_allow_setting_ignores_proxy_variables(remote, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a proxy would fail: it is not used
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    allowing = create_pipeline(device="cpu", url_allow=["127.0.0.1"])
    (res,) = allowing.predict(f"{remote.url}/demo.png")
    assert "BOARDING" in res["rec_text"]


# -- the service --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(pipeline):
    with serve(pipeline, threads=2, queue_size=4, render_timeout=1.0, request_timeout=20, body_timeout=1.0) as s:
        yield s


@pytest.mark.parametrize("make", [lying_page_count, self_referencing_tree], ids=["count", "self"])
def test_service_lying_pdf_is_422(guarded, make):
    error_of(post(guarded, {"file": b64(make()), "fileType": 0}), 422, "page tree is broken")
    assert post(guarded, {"file": b64(DEMO.read_bytes()), "fileType": 1}).status_code == 200


def test_service_lone_surrogate_is_422(guarded):
    body = '{"file": "\\ud800", "fileType": 1}'  # valid JSON, not encodable as UTF-8
    resp = requests.post(f"{guarded.url}/ocr", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    error_of(resp, 422)
    resp = requests.post(f"{guarded.url}/ocr", data='{"file": "http://\\udcff/x.png"}',
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert 400 <= resp.status_code < 500, resp.text


def test_service_render_bombs_free_their_threads(guarded):
    """Two render bombs, one per inference thread, then the demo: it is answered in its normal time."""
    start = time.monotonic()
    normal = post(guarded, {"file": b64(DEMO.read_bytes()), "fileType": 1})
    normal_s = time.monotonic() - start
    assert normal.status_code == 200
    answers = []
    bombs = [threading.Thread(target=lambda: answers.append(post(guarded, {"file": b64(render_bomb()),
                                                                            "fileType": 0})))
             for _ in range(2)]
    start = time.monotonic()
    for t in bombs:
        t.start()
    for t in bombs:
        t.join(30)
    assert time.monotonic() - start < 20
    for resp in answers:
        error_of(resp, 422, "render_timeout")
    start = time.monotonic()
    resp = post(guarded, {"file": b64(DEMO.read_bytes()), "fileType": 1})
    assert resp.status_code == 200 and time.monotonic() - start < 2 * normal_s + 5


def test_service_request_timeout_kills_the_render(pipeline):
    """A 504 means the capacity is back: the render it timed out is stopped, not left running."""
    with serve(pipeline, threads=1, queue_size=1, render_timeout=60, request_timeout=1.5) as server:
        start = time.monotonic()
        error_of(post(server, {"file": b64(render_bomb()), "fileType": 0}), 504, "request_timeout")
        assert time.monotonic() - start < 12
        start = time.monotonic()
        assert post(server, {"file": b64(DEMO.read_bytes()), "fileType": 1}).status_code == 200
        assert time.monotonic() - start < 20
        assert server.runtime._admitted == 0


def test_service_page_bomb_reads_the_first_max_pdf_pages(guarded):
    resp = post(guarded, {"file": b64(repeated_page(100_000)), "fileType": 0})
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["dataInfo"]["numPages"] == 10


def test_service_huge_png_is_422(guarded):
    error_of(post(guarded, {"file": b64(huge_png(19_999)), "fileType": 1}), 422, "max_pixels")


def test_slow_body_gets_408(guarded):
    with socket.create_connection((guarded.host, guarded.port), timeout=30) as sock:
        sock.sendall(b"POST /ocr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"file\": \"")
        start = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):  # headers and body may come in separate packets: read to the close
            answer += chunk
        assert time.monotonic() - start < 15  # body_timeout is 1 s; the rest is slack for a loaded machine
        while chunk := sock.recv(4096):  # the body may come in a later segment than the headers
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body_timeout" in answer
    assert post(guarded, {"file": b64(DEMO.read_bytes()), "fileType": 1}).status_code == 200


def test_service_pdf_pages_go_through_the_input_layer(guarded):
    """The service renders PDFs in the child process too (so the render limit holds there)."""
    two = np.full((200, 300, 3), 255, np.uint8)
    cv2.putText(two, "HELLO", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 4)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(two).save(buf, "PDF", resolution=144.0)
    body = post(guarded, {"file": b64(buf.getvalue()), "fileType": 0}).json()
    assert body["result"]["dataInfo"]["pages"] == [{"width": 300, "height": 200}]
    assert "HELLO" in [t["text"] for t in body["result"]["ocrResults"][0]["texts"]]


@pytest.mark.parametrize("path", ["a\x00b.png", "x" * 5000 + ".png"], ids=["nul", "long"])
def test_unusable_path_is_an_input_error_and_the_list_goes_on(pipeline, small_png, tmp_path, path):
    good = tmp_path / "good.png"
    good.write_bytes(small_png)
    errors = []
    results = list(pipeline.predict([path, str(good)], on_error=lambda label, exc: errors.append(exc)))
    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], InputError)
    assert "cannot be read" in str(errors[0]) or "no such file" in str(errors[0])


def test_limits_are_pipeline_settings_checked_by_name(tmp_path):
    from ocrflow import ConfigError
    from ocrflow.config import load

    with pytest.raises(ConfigError, match="max_pages must be a positive integer"):
        create_pipeline(device="cpu", max_pages=0)
    with pytest.raises(ConfigError, match="page_overflow must be 'error' or 'truncate'"):
        Limits(page_overflow="ignore")
    yaml = tmp_path / "OCR.yaml"
    yaml.write_text("Pipeline:\n  max_pixels: 5000000\n  render_timeout: 3\n  url_allow: [10.0.0.0/8, files.internal]\n"
                    "  process_tuning: true\n")
    conf, _ = load(yaml)
    assert conf.limits == Limits(max_pixels=5_000_000, render_timeout=3, url_allow=("10.0.0.0/8", "files.internal"))
    assert conf.process_tuning is True


def test_service_base64_file_is_bounded_by_the_body_limit_not_the_url_limit(pipeline):
    with serve(pipeline, url_max_bytes=1024) as server:
        assert post(server, {"file": b64(DEMO.read_bytes()), "fileType": 1}).status_code == 200


# -- found in review: a drip-feeding server, an EPS file, odd headers, batches with odd items -----------
def test_url_timeout_holds_against_a_drip_feeding_server(no_proxy):
    import http.server

    from ocrflow.inputs import fetch_url

    class Drip(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):  # a byte every 0.25 s for 50 s: the read timeout never fires
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x.png"
        start = time.monotonic()
        with pytest.raises(FetchError, match="url_timeout") as info:
            fetch_url(url, Limits(url_allow=("127.0.0.1",), url_timeout=1.5, url_read_timeout=1.0))
        assert info.value.status == 504 and time.monotonic() - start < 10
    finally:
        server.shutdown()
        server.server_close()


def test_odd_content_length_and_surrogate_url_are_input_errors(remote):
    from ocrflow.fetch import check_url

    with pytest.raises(FetchError, match="cannot be encoded"):
        check_url("http://example.com/\ud800.png")
    with pytest.raises(InputError):
        list(create_pipeline(device="cpu").predict("http://example.com/\ud800.png"))


def test_eps_is_never_run(pipeline, tmp_path, small_png):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{ } loop\n%%EOF\n"
    (tmp_path / "a.png").write_bytes(small_png)
    (tmp_path / "b.png").write_bytes(eps)  # named as an image; read by content
    start = time.monotonic()
    errors = []
    results = list(pipeline.predict(tmp_path, on_error=lambda label, exc: errors.append(exc)))
    assert time.monotonic() - start < 10
    assert len(results) == 1 and "not a readable image" in str(errors[0])


def test_batch_goes_on_past_items_it_cannot_take(pipeline, small_png, tmp_path):
    import io

    from PIL import Image

    truncated = Image.open(io.BytesIO(small_png[: len(small_png) // 2]))  # opened lazily: broken on decode
    good = tmp_path / "good.png"
    good.write_bytes(small_png)
    errors = []
    items = [object(), {"image": 1}, truncated, str(good)]
    results = list(pipeline.predict(items, on_error=lambda label, exc: errors.append(exc)))
    assert len(results) == 1 and len(errors) == 3 and all(isinstance(e, InputError) for e in errors)
    with pytest.raises(InputError, match="cannot read an input of type object"):
        list(pipeline.predict(object()))  # a single input still raises


def test_concurrent_decodes_leave_warning_filters_alone(small_png):
    import io
    import warnings

    from PIL import Image

    from ocrflow.inputs import decode_image

    buf = io.BytesIO()
    Image.open(io.BytesIO(small_png)).convert("P").save(buf, "GIF")
    before = list(warnings.filters)
    threads = [threading.Thread(target=lambda: [decode_image(buf.getvalue(), "g") for _ in range(30)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before
