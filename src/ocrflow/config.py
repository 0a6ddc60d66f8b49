"""Pipeline configuration: the seed's YAML form, its aliases, and validation that names the key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .det import DetParams
from .errors import ConfigError
from .limits import FIELDS as LIMIT_KEYS
from .limits import Limits

# OCR: the seed's pipeline (PP-OCRv4 mobile, detection + recognition). OCRv6: the pipeline of
# today, PP-OCRv6 small with page and text line orientation (configs/OCRv6.yaml).
PIPELINE_NAMES = ("OCR", "OCRv6")

# ocr_version -> its (det, rec) pair, as PaddleOCR's ocr_version picks one. PP-OCRv6 names the
# small pair: PaddleX's default medium pair exists only as Paddle PIR archives (det_model: to use it).
OCR_VERSIONS = {
    "PP-OCRv4": ("PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"),
    "PP-OCRv5": ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"),
    "PP-OCRv6": ("PP-OCRv6_small_det", "PP-OCRv6_small_rec"),
}

# Other spellings PaddleX versions used -> our key (PaddleX 3.x / PaddleOCR 3.x names included).
ALIASES = {
    "text_det_model": "det_model",
    "text_rec_model": "rec_model",
    "text_rec_batch_size": "rec_batch_size",
    "batch_size": "rec_batch_size",
    "text_det_batch_size": "det_batch_size",
    "text_recognition_batch_size": "rec_batch_size",
    **{f"{paddle}_{kind}": ours for paddle, ours in (
        ("text_detection_model", "det_model"), ("text_recognition_model", "rec_model"),
        ("doc_orientation_classify_model", "doc_orientation_classify_model"),
        ("doc_unwarping_model", "doc_unwarping_model"),
        ("textline_orientation_model", "textline_orientation_model"),
    ) for kind in ("name", "dir")},
    **{f"{prefix}{k}": k for prefix in ("text_det_", "det_")
       for k in ("limit_side_len", "limit_type", "max_side_limit", "thresh", "box_thresh", "unclip_ratio")},
}


@dataclass(frozen=True)
class PipelineConfig:
    det_model: str = "PP-OCRv4_mobile_det"
    rec_model: str = "PP-OCRv4_mobile_rec"
    device: str | None = None  # both models, unless det_device / rec_device say otherwise
    det_device: str | None = None
    rec_device: str | None = None
    rec_batch_size: int = 6
    return_word_box: bool = False  # results gain text_word / text_word_region (PaddleX 3.x)
    det_batch_size: int = 1
    det: DetParams = field(default_factory=DetParams)
    cpu_threads: int | None = None
    backend: str = "auto"  # auto | onnxruntime | openvino
    use_hpip: bool = False
    pdf_render_scale: float = 2.0
    limits: Limits = field(default_factory=Limits)  # max_pixels, max_pages, max_bytes, render_timeout, url_*
    # Process-wide tuning (the CLI, the service and batch workers turn it on): a larger oneDNN kernel
    # cache under use_hpip (an environment variable), freed heap handed back to the OS every 100
    # predictions, and OpenCV's thread pool limited to cpu_threads when that is set.
    process_tuning: bool = False
    input: str | None = None  # Global.input: what the CLI reads when --input is not given
    # PaddleX 3.x's stages around detection and recognition, off unless asked for (stages/):
    use_doc_orientation_classify: bool = False  # turn pages upright (0/90/180/270)
    use_doc_unwarping: bool = False  # flatten photographed, curved pages (UVDoc)
    use_textline_orientation: bool = False  # turn upside-down text lines (0/180)
    doc_orientation_classify_model: str = "PP-LCNet_x1_0_doc_ori"
    doc_unwarping_model: str = "UVDoc"
    textline_orientation_model: str = "ch_ppocr_mobile_v2.0_cls"
    textline_orientation_batch_size: int = 6
    # lines the classifier gives a fair chance of being upside down are read both ways, the reading
    # with the higher recognition score kept (stages/orientation.py); False: the classifier's own rule
    textline_orientation_verify: bool = True
    ocr_version: str | None = None  # PP-OCRv4 | PP-OCRv5 | PP-OCRv6: picks det_model / rec_model
    hpip_profile: dict | None = None  # use_hpip's knobs by name (performance.md), e.g. {precision: f32}


_DET_KEYS = {f.name for f in dataclasses.fields(DetParams)}
_LIMIT_KEYS = set(LIMIT_KEYS)
_TOP_KEYS = {f.name for f in dataclasses.fields(PipelineConfig)} - {"det", "limits", "input"}
_TYPES = {"rec_batch_size": int, "det_batch_size": int, "cpu_threads": int, "textline_orientation_batch_size": int,
          "use_hpip": bool, "process_tuning": bool, "return_word_box": bool, "pdf_render_scale": (int, float),
          "use_doc_orientation_classify": bool, "use_doc_unwarping": bool, "use_textline_orientation": bool,
          "textline_orientation_verify": bool}
_STRINGS = ("det_model", "rec_model", "device", "det_device", "rec_device", "backend", "ocr_version",
            "doc_orientation_classify_model", "doc_unwarping_model", "textline_orientation_model")


def _check_type(key: str, value) -> None:
    want = _TYPES.get(key)
    if want is None or value is None:
        return
    bad = not isinstance(value, want) or (want is int and isinstance(value, bool))
    if want is bool:
        if bad:
            raise ConfigError(f"Pipeline.{key} must be true or false, got {value!r}")
    elif bad or value <= 0:
        raise ConfigError(f"Pipeline.{key} must be a positive {getattr(want, '__name__', 'number')}, got {value!r}")


def build(settings: dict, base: PipelineConfig | None = None, where: str = "Pipeline") -> PipelineConfig:
    """Apply flat settings (YAML `Pipeline:` keys or keyword arguments) over a config."""
    base = base or PipelineConfig()
    top, det, limits = {}, {}, {}
    for raw_key, value in settings.items():
        key = ALIASES.get(raw_key, raw_key)
        if key in _DET_KEYS:
            det[key] = value
        elif key in _LIMIT_KEYS:
            limits[key] = value
        elif key in _TOP_KEYS:
            _check_type(key, value)
            top[key] = value
        else:
            known = sorted(_TOP_KEYS | _DET_KEYS | _LIMIT_KEYS | set(ALIASES))
            raise ConfigError(f"unknown key {where}.{raw_key}; known keys: {', '.join(known)}")
    for key in _STRINGS:
        if key in top and top[key] is not None and not isinstance(top[key], str):
            raise ConfigError(f"{where}.{key} must be a string, got {top[key]!r}")
    if top.get("hpip_profile") is not None and not isinstance(top["hpip_profile"], dict):
        raise ConfigError(f"{where}.hpip_profile must be a mapping of use_hpip settings, got {top['hpip_profile']!r}")
    version = top.get("ocr_version")
    if version is not None:
        if version not in OCR_VERSIONS:
            raise ConfigError(f"{where}.ocr_version must be one of {', '.join(OCR_VERSIONS)}, got {version!r}")
        # the version's pair, unless this same layer of settings names a model itself
        det_name, rec_name = OCR_VERSIONS[version]
        top.setdefault("det_model", det_name)
        top.setdefault("rec_model", rec_name)
    try:
        det_params = dataclasses.replace(base.det, **det)
        limit_values = dataclasses.replace(base.limits, **limits)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return dataclasses.replace(base, det=det_params, limits=limit_values, **top)


def bundled_yaml(name: str = "OCR") -> str:
    return resources.files("ocrflow.configs").joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def parse_yaml(text: str, source: str) -> tuple[PipelineConfig, dict]:
    """A pipeline YAML -> (config, extra sections such as Serving)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a pipeline YAML is a mapping with Global and Pipeline sections")
    unknown = set(doc) - {"Global", "Pipeline", "Serving"}
    if unknown:
        raise ConfigError(f"{source}: unknown section {sorted(unknown)[0]!r}; expected Global, Pipeline, Serving")
    glob = doc.get("Global") or {}
    if not isinstance(glob, dict):
        raise ConfigError(f"{source}: Global must be a mapping")
    for key in glob:
        if key not in ("pipeline_name", "input"):
            raise ConfigError(f"{source}: unknown key Global.{key}; known keys: pipeline_name, input")
    name = glob.get("pipeline_name", "OCR")
    if name != "OCR":
        raise ConfigError(f"{source}: Global.pipeline_name {name!r} is not supported; ocrflow runs: OCR")
    pipe = doc.get("Pipeline") or {}
    if not isinstance(pipe, dict):
        raise ConfigError(f"{source}: Pipeline must be a mapping")
    try:
        config = build(pipe)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if glob.get("input") is not None:
        config = dataclasses.replace(config, input=str(glob["input"]))
    return config, {k: v for k, v in doc.items() if k not in ("Global", "Pipeline")}


def load(pipeline: str | Path) -> tuple[PipelineConfig, dict]:
    """A pipeline name ('OCR') or a path to a pipeline YAML -> (config, extra sections)."""
    text = str(pipeline)
    path = Path(text).expanduser()
    if path.is_file():
        return parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if text in PIPELINE_NAMES:
        return parse_yaml(bundled_yaml(text), f"bundled {text}.yaml")
    if text.endswith((".yaml", ".yml")):
        raise ConfigError(f"pipeline config file {text!r} does not exist")
    raise ConfigError(f"unknown pipeline {text!r}: ocrflow has {', '.join(PIPELINE_NAMES)}, "
                      "or pass a path to a pipeline YAML")
