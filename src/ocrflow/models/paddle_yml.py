"""Read a PaddleX model's `inference.yml`: the model name, pre/post-processing, the dictionary.

PaddleX writes (3.0-beta and later):

    Global: {model_name: PP-OCRv4_mobile_det}
    PreProcess:
      transform_ops:
      - DecodeImage: {channel_first: false, img_mode: BGR}
      - DetResizeForTest: {resize_long: 960}
      - NormalizeImage: {mean: [...], std: [...], scale: 1./255., order: hwc}
      - RecResizeImg: {image_shape: [3, 48, 320]}          # recognition
    PostProcess: {name: DBPostProcess, thresh: 0.3, box_thresh: 0.6, unclip_ratio: 1.5, ...}
    PostProcess: {name: CTCLabelDecode, character_dict: [...]}   # recognition

`ModelFiles.settings` gets the flat keys the pipeline uses ("mean", "std", "scale" for detection,
"image_shape" for recognition) plus "img_mode", "model_name", "resize" (the DetResizeForTest
arguments) and "postprocess" (the PostProcess block without the dictionary), for reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ModelError

try:  # libyaml: a 6623-character dictionary loads ~20x faster
    from yaml import CBaseLoader as _BaseLoader
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - pure-Python PyYAML
    from yaml import BaseLoader as _BaseLoader  # type: ignore[assignment]
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# PostProcess names ocrflow can run, per task.
POSTPROCESS = {"det": ("DBPostProcess",), "rec": ("CTCLabelDecode",)}
TASK_OF_POSTPROCESS = {"DBPostProcess": "det", "CTCLabelDecode": "rec", "ClsPostProcess": "cls"}


@dataclass(frozen=True)
class PaddleConfig:
    model_name: str | None
    task: str | None  # from the PostProcess name, where known
    settings: dict = field(default_factory=dict)
    chars: tuple[str, ...] | None = None


def number(value, what: str, where: Path) -> float:
    """A number as PaddleX writes it: 0.5, '0.5' or a fraction like '1./255.'."""
    if isinstance(value, bool):
        raise ModelError(f"{where}: {what} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                out = float(num) / float(den)
            else:
                out = float(text)
        except (ValueError, ZeroDivisionError):
            raise ModelError(f"{where}: {what} must be a number or a fraction like 1./255., got {value!r}") from None
    else:
        raise ModelError(f"{where}: {what} must be a number, got {value!r}")
    if not math.isfinite(out):
        raise ModelError(f"{where}: {what} must be finite, got {value!r}")
    return out


def _triple(value, what: str, where: Path) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ModelError(f"{where}: {what} must be a list of 3 numbers, got {value!r}")
    return tuple(number(v, what, where) for v in value)  # type: ignore[return-value]


def _ops(doc: dict, where: Path) -> dict[str, dict]:
    """PreProcess.transform_ops as {op name: its arguments}."""
    ops = ((doc.get("PreProcess") or {}).get("transform_ops")) or []
    if not isinstance(ops, list):
        raise ModelError(f"{where}: PreProcess.transform_ops must be a list")
    out: dict[str, dict] = {}
    for op in ops:
        if isinstance(op, dict) and len(op) == 1:
            name, args = next(iter(op.items()))
            out[str(name)] = args if isinstance(args, dict) else {}
        elif isinstance(op, str):
            out[op] = {}
        else:
            raise ModelError(f"{where}: PreProcess.transform_ops entry {op!r} is not an {{OpName: {{...}}}} mapping")
    return out


def _raw_dict(text: str) -> list[str] | None:
    """The dictionary read back with every entry a string exactly as written ('true', '1', 'null')."""
    raw = yaml.load(text, Loader=_BaseLoader) or {}
    post = raw.get("PostProcess") if isinstance(raw, dict) else None
    chars = post.get("character_dict") if isinstance(post, dict) else None
    return list(chars) if isinstance(chars, list) else None


def _chars(post: dict, text: str, folder: Path, where: Path) -> tuple[str, ...] | None:
    from .store import read_dict

    chars = post.get("character_dict")
    if isinstance(chars, list):
        if not all(isinstance(c, str) for c in chars):  # YAML turned some entries into numbers/bools
            chars = _raw_dict(text) or chars
        if not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in chars):
            raise ModelError(f"{where}: PostProcess.character_dict holds entries that are not characters")
        return tuple(str(c) for c in chars)
    path = chars if isinstance(chars, str) else post.get("character_dict_path")
    if isinstance(path, str) and path:
        file = (folder / path) if not Path(path).is_absolute() else Path(path)
        if not file.is_file():
            raise ModelError(f"{where}: the dictionary file {path!r} does not exist (looked for {file})")
        return read_dict(file)
    return None


def read(path: Path) -> PaddleConfig:
    """Parse one inference.yml; a clear ModelError for anything that is not what PaddleX writes."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    try:
        doc = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise ModelError(f"{path} is not valid YAML: {exc}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ModelError(f"{path} is not a PaddleX inference.yml "
                         "(expected a mapping with Global / PreProcess / PostProcess)")

    settings: dict = {}
    model_name = (doc.get("Global") or {}).get("model_name") if isinstance(doc.get("Global"), dict) else None
    if model_name is not None:
        settings["model_name"] = str(model_name)

    ops = _ops(doc, path)
    decode = ops.get("DecodeImage", {})
    if "img_mode" in decode:
        settings["img_mode"] = str(decode["img_mode"]).upper()
    norm = ops.get("NormalizeImage")
    if norm is not None:
        if "mean" in norm:
            settings["mean"] = _triple(norm["mean"], "NormalizeImage.mean", path)
        if "std" in norm:
            settings["std"] = _triple(norm["std"], "NormalizeImage.std", path)
            if any(s == 0 for s in settings["std"]):
                raise ModelError(f"{path}: NormalizeImage.std must not contain 0")
        if "scale" in norm:
            settings["scale"] = number(norm["scale"], "NormalizeImage.scale", path)
        if "order" in norm:
            settings["order"] = str(norm["order"]).lower()
    if "DetResizeForTest" in ops:
        settings["resize"] = dict(ops["DetResizeForTest"])
    rec_resize = ops.get("RecResizeImg")
    if rec_resize and "image_shape" in rec_resize:
        shape = rec_resize["image_shape"]
        if (not isinstance(shape, (list, tuple)) or len(shape) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise ModelError(f"{path}: RecResizeImg.image_shape must be [channels, height, width], got {shape!r}")
        settings["image_shape"] = tuple(shape)

    post = doc.get("PostProcess") or {}
    if not isinstance(post, dict):
        raise ModelError(f"{path}: PostProcess must be a mapping")
    post_name = post.get("name")
    task = TASK_OF_POSTPROCESS.get(str(post_name)) if post_name else None
    topk = post.get("Topk")
    if task is None and isinstance(topk, dict):  # PaddleX's classifiers: page (4 angles) or text line (2)
        labels = topk.get("label_list") or []
        task = "doc_ori" if len(labels) == 4 or "doc_ori" in str(model_name) else "cls"
    if post:
        settings["postprocess"] = {k: v for k, v in post.items() if k != "character_dict"}
    chars = _chars(post, text, path.parent, path)
    return PaddleConfig(settings.get("model_name"), task, settings, chars)


def check_task(cfg: PaddleConfig, task: str, where: Path | str) -> None:
    """A model directory given as the wrong kind of model, or one ocrflow cannot run, is an error."""
    name = (cfg.settings.get("postprocess") or {}).get("name")
    if cfg.task and cfg.task != task:
        raise ModelError(
            f"{where} holds a {cfg.task} model ({cfg.model_name or 'unnamed'}, PostProcess {name}), "
            f"not a {task} model: check which model goes where in the pipeline YAML"
        )
    if name and task in POSTPROCESS and name not in POSTPROCESS[task]:
        raise ModelError(
            f"{where}: PostProcess {name} is not supported; ocrflow runs {task} models with "
            f"{' / '.join(POSTPROCESS[task])}"
        )
    mode = cfg.settings.get("img_mode")
    if mode not in (None, "BGR"):
        raise ModelError(f"{where}: DecodeImage.img_mode {mode} is not supported (ocrflow feeds BGR images)")
