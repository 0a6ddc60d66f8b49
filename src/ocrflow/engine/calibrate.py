"""Each model's backend and precision, chosen by measuring them on this machine.

use_hpip measures every candidate below; the exact path with `backend: auto` on the CPU measures
the f32 ones (OpenVINO and ONNX Runtime, where both are installed): OpenVINO runs the PP-OCRv4
models 1.7-2.3x faster, ONNX Runtime the PP-OCRv6_tiny ones 1.2x, on the same CPU.

A CPU flag does not say which is fastest: OpenVINO bf16 is 1.7x slower than f32 on the v4
recognition model on a Xeon with AVX512-BF16 but no AMX, and 2x faster with AMX. So for each
model every candidate this machine has (OpenVINO f32, OpenVINO bf16 where the CPU reports bf16,
ONNX Runtime f32; for recognition under use_hpip, OpenVINO's also with two streams of one thread
each) runs the same inputs of the shapes the pipeline makes: a page with lines of text drawn on it
(detection), lines of text at two widths (recognition). The fastest wins, if its outputs
agree with the f32 reference's (AGREEMENT: the text map's pixels for detection, the characters of
the lines read for recognition). The choice is logged and cached per CPU, model file, thread
count and library versions in `calibration.json` in the model cache (OCRFLOW_HOME), so a model is
measured once per machine. `hpip_profile: {backend: ..., precision: ...}` fixes either knob, and
a named `backend` the exact path's.
The end-to-end cost of each precision on the dev sets is measured by `ocrflow eval --use_hpip`
(docs/performance.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from ..models import archive, store
from .device import Device
from .jobs import run_ahead
from .runtime import has_module

log = logging.getLogger("ocrflow")

MEASURE = "measure"  # a Profile's backend / precision that calibration decides
AGREEMENT = 0.99  # share of text-map pixels / of the characters read that must match f32's
ROUNDS = 3  # timed passes over the inputs per candidate, after one warm-up; the median counts
CACHE_FILE = "calibration.json"

_lock = threading.Lock()


@dataclass(frozen=True)
class Candidate:
    backend: str
    precision: str
    streams: int = 1  # recognition batches run side by side, splitting the threads (OpenVINO)

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}" + (f" {self.streams} streams" if self.streams > 1 else "")


@dataclass
class Calibration:
    """What calibration chose for one model, and why."""

    backend: str
    precision: str
    streams: int = 1
    model: str = ""  # the model's folder (or file) name, for people reading the cache
    ms: dict[str, float] = field(default_factory=dict)  # candidate -> median ms per pass over the inputs
    agreement: dict[str, float] = field(default_factory=dict)  # candidate -> agreement with f32
    cached: bool = False

    def summary(self) -> str:
        def one(name):
            return f"{name} {self.ms[name]:.1f} ms (agrees {self.agreement.get(name, 1.0):.3f})"

        table = ", ".join(one(name) for name in sorted(self.ms, key=self.ms.get)) or "the only candidate"
        chosen = Candidate(self.backend, self.precision, self.streams)
        return f"{chosen}{' (cached)' if self.cached else ''}: {table}"


def candidates(backend: str = MEASURE, precision: str = MEASURE, streams: int | str = 1) -> list[Candidate]:
    """What this machine can run, f32 reference first; a fixed backend or precision narrows it.
    streams: OpenVINO's, a number or MEASURE (1 and 2: two 1-thread streams beat one 2-thread stream
    where a precision spreads poorly over threads, bf16 on AMX on recognition's small inputs)."""
    ov_streams = (1, 2) if streams == MEASURE else (int(streams),)
    out = []
    if has_module("openvino"):
        from .hpip import cpu_bf16

        out += [Candidate("openvino", "f32", n) for n in ov_streams]
        if cpu_bf16():
            out += [Candidate("openvino", "bf16", n) for n in ov_streams]
    if has_module("onnxruntime"):
        out.append(Candidate("onnxruntime", "f32"))
    return [c for c in out if backend in (MEASURE, "auto", c.backend) and precision in (MEASURE, c.precision)]


WORDS = ["Invoice", "TOTAL", "12.50", "2026-12-06", "receipt", "No.", "Amount", "ocrflow", "Qty", "(GST)", "Cash"]


def _draw(canvas: np.ndarray, rng, x: int, y: int, scale: float) -> None:
    import cv2

    text = " ".join(rng.choice(WORDS, int(rng.integers(2, 7))))
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), max(1, round(scale * 2)),
                cv2.LINE_AA)


def _text_page(width: int, height: int, seed: int) -> np.ndarray:
    """A white page with lines of dark text of a few sizes (BGR uint8)."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 245, np.uint8)
    y = 30
    while y < height - 10:
        scale = float(rng.uniform(0.5, 1.2))
        _draw(page, rng, int(rng.integers(5, 40)), y, scale)
        y += int(40 * scale) + int(rng.integers(5, 30))
    return page


def inputs(task: str, norm=None, rec_height: int = 48) -> list[np.ndarray]:
    """Inputs of the shapes the pipeline gives `task`'s model, with text in them: two pages for
    detection; for recognition, batches of 6 line crops at two widths, twice (so that two
    streams have work side by side)."""
    from ..det import DetParams, preprocess
    from ..rec import resize_norm

    if task == "det":
        return [preprocess(_text_page(w, h, seed), DetParams(), norm)
                for seed, (w, h) in enumerate([(736, 960), (960, 640)])]
    rng = np.random.default_rng(7)
    out = []
    for width in (320, 640):
        lines = []
        for _ in range(6):
            crop = np.full((40, width * 40 // rec_height, 3), 245, np.uint8)
            _draw(crop, rng, 2, 30, 0.9)
            lines.append(resize_norm(crop, rec_height, width))
        out.append(np.stack(lines))
    return out * 2


def _ctc_lines(out: np.ndarray) -> list[list[int]]:
    """Greedy CTC: the character classes each line of a recognition output reads."""
    from ..rec import ctc_columns

    best = out.argmax(-1)
    return [best[i, cols].tolist() for i, cols in enumerate(ctc_columns(out))]


def agreement(task: str, ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    """How far a candidate's outputs match the reference's: detection, the pixels of the text map
    (> 0.3) that agree among those either marks; recognition, 1 - the edit distance between the
    lines read, over their length (what end-to-end accuracy sees)."""
    if task == "det":
        a = np.concatenate([(r > 0.3).ravel() for r in ref])
        b = np.concatenate([(g > 0.3).ravel() for g in got])
        either = np.count_nonzero(a | b)
        return 1.0 if either == 0 else float(1 - np.count_nonzero(a ^ b) / either)
    from rapidfuzz.distance import Levenshtein

    pairs = [(a, b) for r, g in zip(ref, got) for a, b in zip(_ctc_lines(r), _ctc_lines(g))]
    return float(np.mean([Levenshtein.normalized_similarity(a, b) for a, b in pairs]))


def _run_all(task: str, model, batch: list[np.ndarray]) -> None:
    """Every input of `batch`, submitted ahead as the recogniser does (jobs.run_ahead), each
    recognition output read by CTC's argmax meanwhile, as the recogniser reads it."""
    for _, out in run_ahead(model, ((None, x) for x in batch)):
        if task == "rec":
            out.argmax(-1)


def measure(task: str, batch: list[np.ndarray], cands: list[Candidate], load: Callable[[Candidate], object],
            rounds: int = ROUNDS) -> Calibration:
    """Time every candidate on `batch`; the fastest that agrees with the first (the f32 reference)."""
    ms: dict[str, float] = {}
    agree: dict[str, float] = {}
    ref = None
    for cand in cands:
        model = load(cand)
        outs = [model.run(x) for x in batch]
        for _ in range(model.streams):  # warm-up: kernels for these shapes, in every stream
            _run_all(task, model, batch)
        passes = []
        for _ in range(rounds):
            start = time.perf_counter()
            _run_all(task, model, batch)
            passes.append((time.perf_counter() - start) * 1000)
        del model
        ms[str(cand)] = round(statistics.median(passes), 2)
        if ref is None:
            ref = outs
        agree[str(cand)] = round(agreement(task, ref, outs), 4)
    fit = [c for c in cands if agree[str(c)] >= AGREEMENT]
    best = min(fit, key=lambda c: ms[str(c)])
    return Calibration(best.backend, best.precision, best.streams, ms=ms, agreement=agree)


def _key(path: Path, task: str, threads: int | None, cands: list[Candidate]) -> str:
    from .. import __version__

    digest = store.sha256(path)[:16]
    versions = [f"ocrflow {__version__}"]
    for dist in ("openvino", "onnxruntime"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return "|".join([cpu_name(), task, digest, f"threads={threads or os.cpu_count()}",
                     ",".join(map(str, cands)), *versions])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cache_path() -> Path:
    return store.home() / CACHE_FILE


def _read_cache() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def cached() -> list[dict]:
    """The choices on record on this machine: model, task, threads, CPU, choice and figures."""
    rows = []
    for key, record in sorted(_read_cache().items()):
        cpu, task, _, threads, *_ = key.split("|")
        rows.append({"model": record.get("model", ""), "task": task, "threads": int(threads.split("=")[1]),
                     "cpu": cpu, "backend": record["backend"], "precision": record["precision"],
                     "streams": record.get("streams", 1),
                     "ms": record.get("ms", {}), "agreement": record.get("agreement", {})})
    return rows


def model_name(path) -> str:
    """A model's name for people: its folder's for a model folder's inference.onnx, else the file's."""
    path = Path(path)
    return path.parent.name if path.name == "inference.onnx" else path.name


def clear() -> bool:
    """Forget every choice (measured again at the next load); True if there were any."""
    try:
        cache_path().unlink()
        return True
    except FileNotFoundError:
        return False


def _write_cache(key: str, record: Calibration) -> None:
    data = _read_cache()
    data[key] = {k: v for k, v in asdict(record).items() if k != "cached"}
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)  # readers never see half a file


@contextlib.contextmanager
def _machine_lock():
    folder = store.home() / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only cache: this process measures on its own
        yield
        return
    with archive.file_lock(folder / "calibration.lock"):
        yield


def choose(path: Path, task: str, device: Device, threads: int | None, load: Callable[[Candidate], object],
           backend: str = MEASURE, precision: str = MEASURE, norm=None, rec_height: int = 48,
           streams: int | str = 1) -> Calibration:
    """The backend and precision (and streams) for the model at `path`: from the cache, else measured now."""
    if streams == MEASURE and (task != "rec" or (threads or os.cpu_count() or 1) < 2):
        streams = 1  # streams split the threads; detection runs one page at a time
    cands = candidates(backend, precision, streams)
    if not cands:
        from ..errors import ConfigError

        raise ConfigError(f"nothing installed runs backend={backend} precision={precision} on {device}")
    if len(cands) == 1:
        return Calibration(cands[0].backend, cands[0].precision, cands[0].streams)
    key = _key(Path(path), task, threads, cands)
    # One measurement at a time on the machine: processes loading the same model together (OCRmyPDF's
    # jobs, batch workers) wait for the first one's figures instead of timing each other.
    with _lock, _machine_lock():
        hit = _read_cache().get(key)
        if hit is not None:
            return Calibration(**hit, cached=True)
        log.info("measuring %s on this machine for %s (once; cached in %s)",
                 ", ".join(map(str, cands)), model_name(path), cache_path())
        record = measure(task, inputs(task, norm, rec_height), cands, load)
        record.model = model_name(path)
        try:
            _write_cache(key, record)
        except OSError as exc:  # a read-only cache measures again next time, nothing worse
            log.warning("could not cache the calibration in %s: %s", cache_path(), exc)
        return record
