"""Paddle inference models -> ONNX with paddle2onnx (the optional `convert` extra).

paddle2onnx 1.x's Python package imports paddle at import time, but its C++ extension does not
need paddle: it is loaded directly from the installed package folder, without importing the
package, in a child process (see _CHILD). Its output matches the ONNX files RapidOCR ships for
the same weights (max abs diff 2e-7 det, 4e-6 rec). PIR-format models (inference.json, Paddle >= 3.0
archives) need paddle2onnx >= 2, which needs paddlepaddle; that path goes through the package's own
`paddle2onnx.export`.

Shapes stay as the Paddle model declares them: det x [-1, 3, -1, -1], rec x [-1, 3, 48, -1]
(no --input_shape_dict, which would fix the recognition width).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ModelError

OPSET = 14
INSTALL_HINT = "pip install 'ocrflow[convert]'   (installs paddle2onnx>=1.3.1,<2; no paddlepaddle needed)"
PIR_HINT = ("pip install 'paddle2onnx>=2' paddlepaddle   (PIR models need both), or convert it yourself: "
            "paddle2onnx --model_dir DIR --model_filename inference.json --params_filename inference.pdiparams "
            "--save_file DIR/inference.onnx --opset_version 14, and pass DIR")

find_spec = importlib.util.find_spec  # module attribute so tests can simulate a missing paddle2onnx

TIMEOUT_S = 900


def version() -> str | None:
    """The installed paddle2onnx version, or None."""
    if find_spec("paddle2onnx") is None:
        return None
    try:
        return importlib.metadata.version("paddle2onnx")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _major(v: str | None) -> int:
    try:
        return int((v or "0").split(".", 1)[0])
    except ValueError:
        return 0


def _extension_file() -> Path:
    """paddle2onnx's C++ extension, found without importing paddle2onnx (or paddle)."""
    spec = find_spec("paddle2onnx")
    folders = list(spec.submodule_search_locations or []) if spec else []
    candidates = [p for folder in folders for p in sorted(Path(folder).glob("paddle2onnx_cpp2py_export*"))
                  if p.suffix in (".so", ".pyd", ".dylib")]
    if not candidates:
        raise ModelError(f"paddle2onnx {version()} has no C++ extension (paddle2onnx_cpp2py_export) in {folders}; "
                         f"reinstall it: {INSTALL_HINT}")
    return candidates[0]


# Run in a child process: the C++ converter calls abort() on some malformed weights, which must not
# take the caller (a server, a test run) down with it. argv: extension ('' = use the package API),
# model, params, output file, opset.
_CHILD = r"""
import sys
ext, model, params, out, opset = sys.argv[1:6]
opset = int(opset)
if ext:
    import importlib.machinery, importlib.util
    name = "paddle2onnx.paddle2onnx_cpp2py_export"
    loader = importlib.machinery.ExtensionFileLoader(name, ext)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, ext, loader=loader))
    loader.exec_module(module)
    # export(model, params, opset, auto_upgrade_opset, verbose, enable_onnx_checker, enable_experimental_op,
    #        enable_optimize, custom_op_info, deploy_backend, calibration_file, external_file, export_fp16_model)
    data = module.export(model, params, opset, True, False, True, True, True, {}, "onnxruntime", "", "", False)
else:
    import paddle2onnx
    data = paddle2onnx.export(model_filename=model, params_filename=params, opset_version=opset,
                              auto_upgrade_opset=True, verbose=False, enable_onnx_checker=True,
                              enable_experimental_op=True, enable_optimize=True, deploy_backend="onnxruntime")
if not data:
    sys.exit(3)
with open(out, "wb") as f:
    f.write(data)
"""


def available(pir: bool = False) -> str | None:
    """None if a model of this format can be converted here, else what to do about it."""
    v = version()
    if v is None:
        return f"paddle2onnx is not installed: {INSTALL_HINT}"
    if pir:
        if _major(v) < 2:
            return (f"the model is in Paddle's PIR format (inference.json), which paddle2onnx {v} cannot read: "
                    f"{PIR_HINT}")
        if find_spec("paddle") is None:
            return f"converting a PIR-format model (inference.json) needs paddlepaddle: {PIR_HINT}"
    return None


def to_onnx(model_file: Path, params_file: Path, target: Path, what: str) -> None:
    """Convert one Paddle inference model into target (written atomically); `what` names it in errors."""
    pir = model_file.suffix == ".json"
    problem = available(pir)
    if problem:
        raise ModelError(f"{what}: cannot convert {model_file.name} to ONNX: {problem}")
    for f in (model_file, params_file):
        if not f.is_file():
            raise ModelError(f"{what}: {f} is missing")
    ext = "" if _major(version()) >= 2 else str(_extension_file())
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, ext, str(model_file), str(params_file), tmp,
                                   str(OPSET)], capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ModelError(f"{what}: paddle2onnx took more than {TIMEOUT_S} s on {model_file}") from None
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
            said = [ln for ln in lines if "Paddle2ONNX" in ln or "Error" in ln] or lines
            why = "; ".join(said[-3:]) or "no output"
            if proc.returncode < 0:
                why = f"it crashed (signal {-proc.returncode}): {why}"
            raise ModelError(
                f"{what}: paddle2onnx could not convert {model_file} ({why}); check that "
                f"{model_file.name} and {params_file.name} are a complete Paddle inference export of one model"
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
