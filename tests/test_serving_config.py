"""Serving settings from the pipeline YAML and flags, and `ocrflow serve` as a user runs it
(a real process with two uvicorn workers)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_serving_support import DEMO

from ocrflow.errors import ConfigError
from ocrflow.serving.cli import build_parser, resolve_settings
from ocrflow.serving.settings import ServeSettings, from_mapping

requests = pytest.importorskip("requests")

YAML = """\
Global:
  pipeline_name: OCR
Pipeline:
  rec_batch_size: 6
Serving:
  max_body_bytes: 1M
  threads: 1
  url_allow: [10.1.0.0/16, files.internal]
  max_output_img_size: [800, 600]
  extra:
    max_num_input_imgs: 3
"""


def test_yaml_section_and_paddlex_extra():
    s = from_mapping({"max_body_bytes": "1M", "threads": 1, "url_allow": ["10.1.0.0/16"],
                      "max_output_img_size": [800, 600], "extra": {"max_num_input_imgs": 3}})
    assert s.max_body_bytes == 1024 * 1024 and s.threads == 1 and s.max_pdf_pages == 3
    assert s.url_allow == ("10.1.0.0/16",) and s.max_output_img_size == (800, 600)
    assert from_mapping(None) == ServeSettings()


@pytest.mark.parametrize("section, words", [
    ({"max_body_size": 5}, ["max_body_size", "known keys"]),
    ({"threads": 0}, ["threads", "positive"]),
    ({"request_timeout": "soon"}, ["request_timeout"]),
    ({"max_body_bytes": "lots"}, ["not a size"]),
    ({"jpeg_quality": 101}, ["jpeg_quality"]),
    ({"max_output_img_size": [10]}, ["max_output_img_size"]),
    ({"log_level": "loud"}, ["log_level"]),
])
def test_bad_settings_name_the_key(section, words):
    with pytest.raises(ConfigError) as err:
        from_mapping(section)
    for word in words:
        assert word in str(err.value)


def test_flags_win_over_yaml(tmp_path):
    path = tmp_path / "OCR.yaml"
    path.write_text(YAML)
    from ocrflow.config import load

    _, extra = load(path)
    args = build_parser().parse_args(["--pipeline", str(path), "--max-body-bytes", "2M", "--url_allow",
                                      "127.0.0.1,::1", "--url_allow", "10.9.0.0/16", "--max_output_img_size",
                                      "1000x700", "--no-demo", "--request_timeout", "9"])
    s = resolve_settings(args, extra["Serving"])
    assert s.max_body_bytes == 2 * 1024 * 1024  # flag
    assert s.threads == 1 and s.max_pdf_pages == 3  # YAML
    assert s.url_allow == ("127.0.0.1", "::1", "10.9.0.0/16")
    assert s.max_output_img_size == (1000, 700) and s.demo is False and s.request_timeout == 9.0
    assert s.queue_size == ServeSettings().queue_size  # default


def test_bad_yaml_setting_is_a_clean_error(tmp_path):
    path = tmp_path / "OCR.yaml"
    path.write_text(YAML.replace("threads: 1", "threads: many"))
    out = subprocess.run([sys.executable, "-m", "ocrflow.cli", "serve", "--pipeline", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Serving.threads" in out.stderr and "Traceback" not in out.stderr


def test_help_of_both_forms():
    for argv in (["serve", "--help"], ["--serve", "--help"]):
        out = subprocess.run([sys.executable, "-m", "ocrflow.cli", *argv], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert "--max_body_bytes" in out.stdout and "--url_allow" in out.stdout and "--workers" in out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ocrflow_serve_with_two_workers(tmp_path):
    """`ocrflow --serve` (PaddleX's form) with a YAML Serving section, two worker processes."""
    path = tmp_path / "OCR.yaml"
    path.write_text(YAML)
    port = free_port()
    cli = Path(sys.executable).with_name("ocrflow")
    cmd = [str(cli) if cli.exists() else sys.executable, *([] if cli.exists() else ["-m", "ocrflow.cli"]),
           "--serve", "--pipeline", str(path), "--port", str(port), "--workers", "2", "--cpu_threads", "1",
           "--log_level", "info"]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        payload = {"file": base64.b64encode(DEMO.read_bytes()).decode(), "fileType": 1}
        answers = [requests.post(f"{url}/ocr", json=payload, timeout=60) for _ in range(3)]
        assert all(a.status_code == 200 for a in answers)
        assert "BOARDING" in [t["text"] for t in answers[0].json()["result"]["ocrResults"][0]["texts"]]
        too_big = requests.post(f"{url}/ocr", json={"file": "A" * (1024 * 1024 + 10), "fileType": 1}, timeout=30)
        assert too_big.status_code == 413  # the YAML's max_body_bytes: 1M
        metrics = requests.get(f"{url}/metrics", timeout=10).text  # summed over both workers
        assert 'ocrflow_http_requests_total{method="POST",path="/ocr",status="200"} 3.0' in metrics
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = log.read_text()
    assert "with 2 workers" in text
    request_id = answers[0].json()["logId"]
    assert request_id in text  # the log line carries the logId
