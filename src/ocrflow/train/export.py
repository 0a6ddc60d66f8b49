"""Export a trained model to an ONNX model directory the pipeline accepts as det_model: / rec_model:.

The directory holds `inference.onnx` (dynamic shapes: det x [-1, 3, -1, -1], rec x [-1, 3, 48, -1])
and `inference.yml` in PaddleX's form: `Global.model_name`, `PreProcess.transform_ops` and
`PostProcess` (for rec: `CTCLabelDecode` with the `character_dict`).
"""

from __future__ import annotations

import copy
import inspect
import io
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from .. import det as det_mod
from .. import rec as rec_mod

OPSET = 17


def _dummy(task: str) -> torch.Tensor:
    # Odd, non-default sizes on purpose, so no size can be frozen into the graph by accident.
    if task == "det":
        return torch.rand(1, 3, 96, 160) * 2 - 1
    return torch.rand(2, 3, rec_mod.REC_HEIGHT, 200) * 2 - 1


def onnx_bytes(model: torch.nn.Module, task: str, input_name: str = "x", output_name: str | None = None) -> bytes:
    """The model (eval mode, inference output only) as ONNX bytes, opset 17, dynamic shapes."""
    module = copy.deepcopy(model).cpu().eval()
    output_name = output_name or ("sigmoid_0.tmp_0" if task == "det" else "softmax_0.tmp_0")
    axes = {0: "batch", 2: "height", 3: "width"} if task == "det" else {0: "batch", 3: "width"}
    out_axes = {0: "batch", 2: "height", 3: "width"} if task == "det" else {0: "batch", 1: "steps"}
    kwargs = dict(input_names=[input_name], output_names=[output_name], opset_version=OPSET,
                  dynamic_axes={input_name: axes, output_name: out_axes}, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: no onnxscript needed, dynamic_axes honoured
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (_dummy(task),), buf, **kwargs)
    return buf.getvalue()


def det_yaml(model_name: str, params: det_mod.DetParams | None = None) -> dict:
    p = params or det_mod.DetParams()
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {"transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"DetLabelEncode": None},
            {"DetResizeForTest": {"resize_long": p.limit_side_len}},
            {"NormalizeImage": {"mean": list(det_mod.IMAGENET_MEAN), "std": list(det_mod.IMAGENET_STD),
                                "scale": "1./255.", "order": "hwc"}},
            {"ToCHWImage": None},
            {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
        ]},
        "PostProcess": {"name": "DBPostProcess", "thresh": p.thresh, "box_thresh": p.box_thresh,
                        "max_candidates": p.max_candidates, "unclip_ratio": p.unclip_ratio},
    }


def rec_yaml(model_name: str, chars: list[str], image_shape=(3, rec_mod.REC_HEIGHT, rec_mod.REC_WIDTH)) -> dict:
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {"transform_ops": [
            {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"CTCLabelEncode": None},
            {"RecResizeImg": {"image_shape": list(image_shape)}},
            {"KeepKeys": {"keep_keys": ["image", "label", "length"]}},
        ]},
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": list(chars)},
    }


def write_model_dir(out_dir: str | Path, onnx_data: bytes, yml: dict) -> Path:
    """inference.onnx + inference.yml in out_dir (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference.onnx").write_bytes(onnx_data)
    text = yaml.safe_dump(yml, allow_unicode=True, sort_keys=False, width=1000)
    (out / "inference.yml").write_text(text, encoding="utf-8")
    return out


def check_onnx(onnx_data: bytes, model: torch.nn.Module, task: str, x: np.ndarray | None = None) -> float:
    """Max abs difference between the exported bytes (ONNX Runtime, else OpenVINO) and the torch model, on x."""
    if x is None:
        x = (np.random.default_rng(0).random((2, 3, 64, 224) if task == "det" else (3, 3, 48, 344)) * 2 - 1)
    x = x.astype(np.float32)
    got = _run_onnx(onnx_data, x)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        ref = model(torch.from_numpy(x).to(device)).cpu().numpy()
    model.train(was_training)
    if got.shape != ref.shape:
        raise RuntimeError(f"exported model gives shape {got.shape}, torch {ref.shape}")
    return float(np.abs(got - ref).max())


def _run_onnx(onnx_data: bytes, x: np.ndarray) -> np.ndarray:
    # Either runtime will do: a GPU install has onnxruntime-gpu, a CPU install may have OpenVINO alone.
    from ..engine.runtime import has_module

    if has_module("onnxruntime"):
        import onnxruntime as ort

        sess = ort.InferenceSession(onnx_data, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(onnx_data), "CPU")
    return compiled(x)[0]
