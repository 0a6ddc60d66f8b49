"""Run every python and bash block of README.md and docs/ that is not marked skip or covered-by
(integration: each starts ocrflow). The convention is in docs/dev/testing.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO
from docblocks import ROOT, all_blocks

RUNNABLE = [b for b in all_blocks() if b.runs and b.lang in ("python", "bash")]


def _sandbox(path: Path) -> Path:
    """A scratch folder with the files the examples name, and the repository's tests/ benchmarks/ tools/."""
    from PIL import Image

    path.mkdir()
    for name in ("general_ocr_002.png", "scan.png"):
        shutil.copyfile(DEMO, path / name)
    (path / "scans").mkdir()
    shutil.copyfile(DEMO, path / "scans" / "boarding_pass.jpg")
    Image.open(DEMO).convert("RGB").save(path / "doc.pdf", resolution=72.0)
    for name in ("tests", "benchmarks", "tools"):
        (path / name).symlink_to(ROOT / name, target_is_directory=True)
    return path


@pytest.fixture(scope="module", autouse=True)
def models_of_the_examples():
    """The examples run offline: on a fresh machine only the default models are there, so fetch
    the bundled OCRv6 pipeline's (docs/stages.md) by loading it once, and the tiny pair
    (docs/outputs.md)."""
    from ocrflow import create_pipeline
    from ocrflow.models import store

    create_pipeline("OCRv6")
    for name in ("PP-OCRv6_tiny_det", "PP-OCRv6_tiny_rec"):
        store.fetch(name)


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_block_runs(block, tmp_path):
    work = _sandbox(tmp_path / "work")
    env = dict(os.environ, OCRFLOW_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.code]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{block.id} failed:\n{block.code}\n--- stderr:\n{proc.stderr[-3000:]}"
