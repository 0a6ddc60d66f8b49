"""A fast subset of the fuzz campaign (benchmarks/fuzz.py; docs/untrusted-input.md gives the 10,000-input run):
mutated images and PDFs give an ocrflow error or pages, never another exception, within their time
bound, with bounded memory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz  # noqa: E402


def test_fuzz_subset(tmp_path):
    report = tmp_path / "fuzz.json"
    code = fuzz.main(["--n", "400", "--seed", "7", "--predict_every", "40", "--progress", "0",
                      "--render_timeout", "1", "--save", str(tmp_path / "crashes"), "--json", str(report)])
    result = json.loads(report.read_text())
    assert result["crash"] == 0 and result["over_time"] == 0, result
    assert code == 0
    assert result["ok"] > 20 and result["input_error"] > 100  # the mutations reach both outcomes
    # (the test process's own peak holds the other tests' big arrays: benchmarks/fuzz.py measures it alone)
    assert result["renderer_peak_rss_mib"] < 1500
