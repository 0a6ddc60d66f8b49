"""`ocrflow train` without the `train` extra: help works, training says what to install (no torch needed)."""

import subprocess
import sys

NO_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, timeout=120)


def test_help_needs_no_torch():
    proc = _run("from ocrflow.cli import main; sys.exit(main(['train', 'rec', '--help']))")
    assert proc.returncode == 0, proc.stderr
    assert "--data" in proc.stdout and "--freeze" in proc.stdout and "--resume" in proc.stdout


def test_training_without_torch_names_the_extra():
    proc = _run("from ocrflow.cli import main; sys.exit(main(['train', 'rec', '--data', 'x.txt']))")
    assert proc.returncode == 2
    assert "ocrflow[train]" in proc.stderr and "Traceback" not in proc.stderr


def test_det_help_lists_the_detection_options():
    proc = _run("from ocrflow.cli import main; sys.exit(main(['train', 'det', '--help']))")
    assert proc.returncode == 0, proc.stderr
    assert "--shrink_loss" in proc.stdout and "--shrink_ratio" in proc.stdout
