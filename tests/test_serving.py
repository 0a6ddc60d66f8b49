"""The HTTP service against a real uvicorn server and the real models: the seed's client, PDFs,
maxLongSide, health, metrics, error envelopes, URL inputs, and the limits (413, 422, 503, 504)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest
from test_serving_support import (
    DEMO,
    LiveServer,
    RemoteFiles,
    connect_spy,  # noqa: F401  (fixture)
    demo_b64,
    serve,
    shared_server,
    two_page_pdf,
)

requests = pytest.importorskip("requests")

SEED_CLIENT = '''import base64
import requests

API_URL = "http://localhost:8080/ocr"
file_path = "./demo.jpg"

with open(file_path, "rb") as file:
    file_bytes = file.read()
    file_data = base64.b64encode(file_bytes).decode("ascii")

payload = {"file": file_data, "fileType": 1}

response = requests.post(API_URL, json=payload)

assert response.status_code == 200
result = response.json()["result"]
for i, res in enumerate(result["ocrResults"]):
    print("Detected texts:")
    print(res["texts"])
    output_img_path = f"out_{i}.jpg"
    with open(output_img_path, "wb") as f:
        f.write(base64.b64decode(res["image"]))
    print(f"Output image saved at {output_img_path}")
'''


@pytest.fixture(scope="module")
def live(pipeline):
    return shared_server(pipeline)


@pytest.fixture(scope="module")
def local_files():
    with RemoteFiles() as files:
        yield files


@pytest.fixture(scope="module")
def allowing(pipeline):
    """A server that may fetch from 127.0.0.1 (and only there), with small URL limits."""
    with serve(pipeline, url_allow=("127.0.0.1/32",), url_read_timeout=0.5, url_max_bytes=1024 * 1024,
               url_max_redirects=2) as server:
        yield server


def post(server, payload, **kw):
    return requests.post(f"{server.url}/ocr", json=payload, timeout=60, **kw)


def texts_of(body, page=0):
    return [t["text"] for t in body["result"]["ocrResults"][page]["texts"]]


def check_error(resp, status, *words):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"logId", "errorCode", "errorMsg"}
    assert body["errorCode"] == status
    assert body["logId"] and resp.headers["x-log-id"] == body["logId"]
    for word in words:
        assert word.lower() in body["errorMsg"].lower(), body["errorMsg"]
    return body


# -- the seed's client and the API shape ------------------------------------------------------

def test_seed_python_client(pipeline, tmp_path, monkeypatch, capsys):
    """The seed's example verbatim, except the file name (and the port when 8080 is taken)."""
    with LiveServer(serve(pipeline).app, port=8080) as server:
        code = SEED_CLIENT.replace('"./demo.jpg"', repr(str(DEMO)))
        if server.port != 8080:
            code = code.replace("localhost:8080", f"localhost:{server.port}")
        monkeypatch.chdir(tmp_path)
        exec(compile(code, "seed_client.py", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "Detected texts:" in out and "BOARDING" in out
    assert "Output image saved at out_0.jpg" in out
    picture = (tmp_path / "out_0.jpg").read_bytes()
    assert picture[:3] == b"\xff\xd8\xff"


def test_image_result_shape(live):
    resp = post(live, {"file": demo_b64(), "fileType": 1})
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == ["logId", "errorCode", "errorMsg", "result"]
    assert body["errorCode"] == 0 and body["errorMsg"] == "Success"
    assert body["logId"] == resp.headers["x-log-id"]
    result = body["result"]
    assert result["dataInfo"] == {"width": 896, "height": 528, "type": "image"}
    assert len(result["ocrResults"]) == 1
    page = result["ocrResults"][0]
    assert {"BOARDING", "PASS"} <= set(texts_of(body))
    for item in page["texts"]:
        assert set(item) == {"poly", "text", "score"}
        assert len(item["poly"]) >= 3 and all(len(p) == 2 and all(isinstance(v, int) for v in p)
                                               for p in item["poly"])
        assert 0 <= item["score"] <= 1
    picture = base64.b64decode(page["image"], validate=True)
    assert picture[:3] == b"\xff\xd8\xff"
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (528, 2 * 896)  # the side-by-side picture, within 2000 x 2000


def test_same_answer_as_python_api(live, pipeline):
    resp = post(live, {"file": demo_b64(), "fileType": 1})
    res = next(pipeline.predict(str(DEMO)))
    texts = resp.json()["result"]["ocrResults"][0]["texts"]
    assert [t["text"] for t in texts] == res["rec_text"]
    assert [t["poly"] for t in texts] == res["dt_polys"].tolist()


def test_pdf_two_pages(live):
    pdf = base64.b64encode(two_page_pdf()).decode()
    resp = post(live, {"file": pdf, "fileType": 0})
    assert resp.status_code == 200, resp.text
    result = resp.json()["result"]
    assert result["dataInfo"]["type"] == "pdf"
    assert result["dataInfo"]["numPages"] == 2
    assert result["dataInfo"]["pages"] == [{"width": 896, "height": 528}] * 2
    assert len(result["ocrResults"]) == 2
    for page in result["ocrResults"]:
        assert "BOARDING" in [t["text"] for t in page["texts"]]


def test_pdf_page_limit(pipeline):
    with serve(pipeline, max_pdf_pages=1) as server:
        resp = post(server, {"file": base64.b64encode(two_page_pdf()).decode(), "fileType": 0})
    assert resp.status_code == 200
    result = resp.json()["result"]
    assert result["dataInfo"]["numPages"] == 1 and len(result["ocrResults"]) == 1


def test_max_long_side(live):
    """maxLongSide changes what detection sees, yet polygons stay in the original image's pixels."""
    default = post(live, {"file": demo_b64(), "fileType": 1}).json()
    small = post(live, {"file": demo_b64(), "fileType": 1, "inferenceParams": {"maxLongSide": 320}})
    assert small.status_code == 200, small.text
    small = small.json()
    polys_default = [t["poly"] for t in default["result"]["ocrResults"][0]["texts"]]
    polys_small = [t["poly"] for t in small["result"]["ocrResults"][0]["texts"]]
    assert polys_small != polys_default  # detection ran on a smaller image
    xs = [p[0] for poly in polys_small for p in poly]
    ys = [p[1] for poly in polys_small for p in poly]
    assert 0.8 * 896 < max(xs) <= 896 and 0.6 * 528 < max(ys) <= 528  # original coordinates, not 320-scale
    assert small["result"]["dataInfo"] == {"width": 896, "height": 528, "type": "image"}


def test_health(live):
    resp = requests.get(f"{live.url}/health", timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert body["errorCode"] == 0 and body["errorMsg"] == "Healthy" and body["logId"]


def test_openapi_and_docs(live):
    schema = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    assert schema["paths"]["/ocr"]["post"]["operationId"] == "infer"
    assert "/health" in schema["paths"]
    assert requests.get(f"{live.url}/docs", timeout=10).status_code == 200


def test_metrics(live):
    requests.get(f"{live.url}/health", timeout=10)
    post(live, {"file": "bm90IGFuIGltYWdl", "fileType": 1})
    text = requests.get(f"{live.url}/metrics", timeout=10).text
    assert 'ocrflow_http_requests_total{method="GET",path="/health",status="200"}' in text
    assert 'ocrflow_http_errors_total{path="/ocr",status="422"}' in text
    assert 'ocrflow_http_request_duration_seconds_bucket{le="0.5",method="POST",path="/ocr"}' in text
    assert "ocrflow_http_requests_in_flight" in text and "ocrflow_ocr_requests_admitted" in text


# -- client mistakes: 4xx with the envelope ----------------------------------------------------

@pytest.mark.parametrize("payload, status, words", [
    ({"file": "not base64 at all!", "fileType": 1}, 422, ["base64"]),
    ({"file": " \n", "fileType": 1}, 422, ["empty"]),
    ({"file": base64.b64encode(b"hello, not an image").decode(), "fileType": 1}, 422, ["not a readable image"]),
    ({"file": "aGVsbG8="}, 422, ["Unknown file type"]),
    ({"file": "aGVsbG8=", "fileType": 2}, 422, ["fileType"]),
    ({"file": "aGVsbG8=", "fileType": "1"}, 422, ["fileType"]),
    ({"file": "aGVsbG8=", "fileType": 1, "inferenceParams": {"maxLongSide": 0}}, 422, ["maxLongSide"]),
    ({"file": "aGVsbG8=", "fileType": 1, "inferenceParams": {"maxLongSide": "big"}}, 422, ["maxLongSide"]),
    ({"file": "aGVsbG8=", "fileType": 1, "inferenceParams": {"limit": 3}}, 422, ["limit"]),
    ({"file": ""}, 422, ["file"]),
    ({}, 422, ["missing"]),
    ({"file": "http://example.invalid/scan"}, 422, ["Unknown file type", "fileType"]),
])
def test_client_errors(live, payload, status, words):
    check_error(post(live, payload), status, *words)


def test_mismatched_file_type(live):
    check_error(post(live, {"file": demo_b64(), "fileType": 0}), 422, "not a PDF")
    pdf = base64.b64encode(two_page_pdf()).decode()
    check_error(post(live, {"file": pdf, "fileType": 1}), 422, "is a PDF")


def test_broken_pdf(live):
    broken = base64.b64encode(b"%PDF-1.7\n garbage " * 10).decode()
    check_error(post(live, {"file": broken, "fileType": 0}), 422, "PDF")


def test_bad_json_and_framework_errors(live):
    resp = requests.post(f"{live.url}/ocr", data="{not json", headers={"Content-Type": "application/json"},
                         timeout=10)
    check_error(resp, 422, "JSON")
    check_error(requests.get(f"{live.url}/no/such/page", timeout=10), 404)
    resp = requests.get(f"{live.url}/ocr", timeout=10)
    check_error(resp, 405)
    assert "POST" in resp.headers["allow"]


class Broken:
    config = None

    def predict(self, x, **kw):
        raise RuntimeError("a bug")


def test_our_bug_is_a_500_with_the_envelope(caplog):
    with serve(Broken()) as server, caplog.at_level(logging.INFO, logger="ocrflow.serving"):
        body = check_error(post(server, {"file": demo_b64(), "fileType": 1}), 500)
        assert body["errorMsg"] == "Internal server error"  # no internals leak
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        assert server.runtime._admitted == 0
    assert any(body["logId"] in r.getMessage() and r.exc_info for r in caplog.records)  # logged with traceback


def test_static_404_has_the_envelope(live):
    check_error(requests.get(f"{live.url}/static/nope.js", timeout=5), 404)


def test_log_line_carries_log_id(live, caplog):
    with caplog.at_level(logging.INFO, logger="ocrflow.serving"):
        body = check_error(post(live, {"file": "aGVsbG8="}), 422)
        time.sleep(0.1)
    assert any(body["logId"] in r.getMessage() for r in caplog.records)


def test_data_url_accepted(live):
    resp = post(live, {"file": "data:image/jpeg;base64," + demo_b64()})
    assert resp.status_code == 200 and "BOARDING" in texts_of(resp.json())


# -- limits -------------------------------------------------------------------------------------

def test_decompression_bomb_refused(live):
    """A 50-megapixel PNG of a few kilobytes: refused from its header, never decoded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (8000, 6500)).save(buf, "PNG")
    assert len(buf.getvalue()) < 100_000
    start = time.monotonic()
    check_error(post(live, {"file": base64.b64encode(buf.getvalue()).decode(), "fileType": 1}), 422, "pixels")
    assert time.monotonic() - start < 5


def test_huge_pdf_page_refused(live):
    """A tiny PDF whose page would render to 200 megapixels: refused before rendering."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (100, 100)).save(buf, "PDF", resolution=1.0)  # a 100 x 100 inch page
    check_error(post(live, {"file": base64.b64encode(buf.getvalue()).decode(), "fileType": 0}), 422, "pixels")


def test_body_too_large(pipeline):
    with serve(pipeline, max_body_bytes=512 * 1024) as server:
        big = {"file": "A" * 1_500_000, "fileType": 1}
        check_error(post(server, big), 413, "max_body_bytes")  # Content-Length says so up front

        def chunks():  # no Content-Length: counted while the body streams in
            data = json.dumps(big).encode()
            for i in range(0, len(data), 16 * 1024):
                yield data[i:i + 16 * 1024]

        resp = requests.post(f"{server.url}/ocr", data=chunks(), headers={"Content-Type": "application/json"},
                             timeout=30)
        check_error(resp, 413, "max_body_bytes")
        small = post(server, {"file": demo_b64(), "fileType": 1})  # still serving
        assert small.status_code == 200


class Gate:
    """A pipeline whose predict waits for a gate: requests that stay in flight as long as wanted."""

    def __init__(self, inner):
        self.inner = inner
        self.config = inner.config
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def predict(self, x, **kw):
        self.entered.release()
        self.gate.wait(30)
        return self.inner.predict(x, **kw)


def test_queue_full_answers_503_at_once(pipeline):
    slow = Gate(pipeline)
    with serve(slow, threads=1, queue_size=1, retry_after=7) as server:
        payload = {"file": demo_b64(), "fileType": 1}
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(post(server, payload))) for _ in range(2)]
        for t in threads:
            t.start()
        assert slow.entered.acquire(timeout=20)  # one running, one waiting: the queue is full
        deadline = time.monotonic() + 10
        while server.runtime._admitted < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        start = time.monotonic()
        resp = post(server, payload)
        assert time.monotonic() - start < 2  # no hang
        check_error(resp, 503, "busy")
        assert resp.headers["retry-after"] == "7"
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200  # the loop is free
        slow.gate.set()
        for t in threads:
            t.join(60)
        assert [a.status_code for a in answers] == [200, 200]
        assert post(server, payload).status_code == 200  # the slots came back
        assert 'ocrflow_ocr_rejected_total 1.0' in requests.get(f"{server.url}/metrics", timeout=5).text


def test_request_timeout_504(pipeline):
    slow = Gate(pipeline)
    with serve(slow, threads=1, queue_size=0, request_timeout=0.5) as server:
        start = time.monotonic()
        check_error(post(server, {"file": demo_b64(), "fileType": 1}), 504, "request_timeout")
        assert time.monotonic() - start < 5
        slow.gate.set()
        deadline = time.monotonic() + 30
        while server.runtime._admitted and time.monotonic() < deadline:  # the thread finishes, the slot frees
            time.sleep(0.05)
        assert server.runtime._admitted == 0


def test_concurrent_requests(live):
    """Several requests in flight at once all get their own answer."""
    payload = {"file": demo_b64(), "fileType": 1}
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(live, payload))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.json()["logId"] for a in answers}) == 4


# -- URL inputs from an allowed local server ---------------------------------------------------

def test_url_image_and_pdf(allowing, local_files, connect_spy):  # noqa: F811
    resp = post(allowing, {"file": f"{local_files.url}/demo.png"})
    assert resp.status_code == 200, resp.text
    assert "BOARDING" in texts_of(resp.json())
    resp = post(allowing, {"file": f"{local_files.url}/doc.pdf"})  # type from the extension
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["dataInfo"]["numPages"] == 2
    resp = post(allowing, {"file": f"{local_files.url}/demo", "fileType": 1})  # no extension: say it
    assert resp.status_code == 200
    assert all(address == "127.0.0.1" for address, _ in connect_spy)


def test_url_failures(allowing, local_files, connect_spy):  # noqa: F811
    check_error(post(allowing, {"file": f"{local_files.url}/missing.png"}), 502, "404")
    check_error(post(allowing, {"file": f"{local_files.url}/big.png"}), 413, "url_max_bytes")
    check_error(post(allowing, {"file": f"{local_files.url}/loop.png"}), 502, "redirected more than 2")
    start = time.monotonic()
    check_error(post(allowing, {"file": f"{local_files.url}/slow.png"}), 504)
    assert time.monotonic() - start < 5
    check_error(post(allowing, {"file": f"{local_files.url}/doc.pdf", "fileType": 1}), 422, "is a PDF")
    # a closed port on an allowed address: a remote failure, not ours
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    check_error(post(allowing, {"file": f"http://127.0.0.1:{port}/x.png"}), 502, "connect")


@pytest.fixture(scope="module")
def https_files(tmp_path_factory):
    """RemoteFiles over TLS with a self-signed certificate for 127.0.0.1 (made with the openssl tool)."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    files = RemoteFiles()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    files.httpd.socket = context.wrap_socket(files.httpd.socket, server_side=True)
    files.url = files.url.replace("http://", "https://")
    with files:
        yield files, cert


def test_https_url_verified(allowing, https_files, monkeypatch, connect_spy):  # noqa: F811
    files, cert = https_files
    url = f"{files.url}/demo.png"
    check_error(post(allowing, {"file": url}), 502, "certificate")  # an unknown issuer is refused
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now trusted: the same URL works
    resp = post(allowing, {"file": url})
    assert resp.status_code == 200, resp.text
    assert "BOARDING" in texts_of(resp.json())


def test_stage_switches_in_paddlex_3_spelling(live):
    """inferenceParams.useDocOrientationClassify / useTextlineOrientation turn a sideways page upright."""
    import cv2

    ok, turned = cv2.imencode(".png", cv2.rotate(cv2.imread(str(DEMO)), cv2.ROTATE_90_CLOCKWISE))
    payload = {"file": base64.b64encode(turned.tobytes()).decode("ascii"), "fileType": 1}
    reference = set(texts_of(post(live, {"file": demo_b64(), "fileType": 1}).json()))
    plain = post(live, payload).json()
    upright = post(live, {**payload, "inferenceParams": {"useDocOrientationClassify": True,
                                                          "useTextlineOrientation": True}})
    assert upright.status_code == 200, upright.text
    read = set(texts_of(upright.json()))
    assert len(read & reference) >= 0.75 * len(reference) > len(set(texts_of(plain)) & reference)
    check_error(post(live, {**payload, "inferenceParams": {"useDocUnwarping": "yes"}}), 422, "useDocUnwarping")
