"""High-performance inference (use_hpip): the fastest backend this hardware offers.

CPU: OpenVINO f32, OpenVINO bf16 or ONNX Runtime, whichever runs each model fastest here,
measured once per machine (calibrate.py). NVIDIA GPU: ONNX Runtime's CUDA provider. The pipeline
also pads inputs up to a few shapes and drops recognition's 320 px minimum width (shapes.py,
pipeline.py). Both trade a little accuracy for speed; `ocrflow eval` measures how much
(docs/performance.md). int8 (NNCF post-training quantisation) was measured and left out: it lost
0.9 (detection) to 8 (recognition) points of end-to-end accuracy on SROIE and ran no faster than bf16.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass

from ..errors import ConfigError
from . import BACKENDS
from .calibrate import MEASURE
from .device import Device

log = logging.getLogger("ocrflow")

# Input shapes whose kernels each model keeps (OpenVINO). use_hpip pads inputs to few shapes
# (shapes.py): recognition meets at most 37 widths x 6 batch sizes, the common ones fit in 128
# (256 was 6% faster on documents for 160 MiB more); a detection shape holds ~5 MB.
SHAPE_CACHE = {"det": 16, "rec": 128}

# oneDNN, under OpenVINO's CPU plugin, keeps the kernels it generates in one process-wide cache of
# 1024 (ONEDNN_PRIMITIVE_CACHE_CAPACITY). Each new input shape adds dozens, so recognition's shapes
# evicted detection's kernels and both re-generated kernels for shapes seen before. 2048 cuts the
# model time of a second pass over 20 photos by 26% (3072 and 4096: no better) for +30-70 MiB; 16384
# cost 1 GiB in the memory soak. oneDNN reads the setting once, at the process's first kernel.
PRIMITIVE_CACHE = 2048


def widen_kernel_cache() -> None:
    """Raise oneDNN's kernel cache for this process, unless the user has set it."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE))


@functools.cache
def hint_process_tuning() -> None:
    """Say once what process_tuning would change: the library does not set process-wide state
    unless asked."""
    if "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ:
        log.info("use_hpip: oneDNN's kernel cache stays at its 1024 kernels and NumPy's large arrays at huge "
                 "pages in this process; process_tuning=True (or ONEDNN_PRIMITIVE_CACHE_CAPACITY=%d and "
                 "NUMPY_MADVISE_HUGEPAGE=0 before the first import) reads varied pages faster "
                 "(docs/performance.md)", PRIMITIVE_CACHE)


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    reason: str


@functools.cache
def cpu_bf16() -> bool:
    """True if OpenVINO reports native bf16 compute on this CPU (asked once: 60 ms a Core)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def choose(device: Device) -> Choice:
    if device.kind == "gpu":
        return Choice("onnxruntime", "f32", "NVIDIA GPU: ONNX Runtime CUDA provider")
    return Choice(MEASURE, MEASURE, "CPU: each model's backend and precision measured on this machine")


@dataclass(frozen=True)
class Profile:
    """How the pipeline runs its models: every knob use_hpip turns, by name. The exact profile
    is the official pipeline's arithmetic; use_hpip's trades a little accuracy for speed. Each
    knob can be overridden (the `hpip_profile` setting) and the choice is logged."""

    backend: str = "auto"  # auto | onnxruntime | openvino | measure (per model, calibrate.py)
    precision: str = "f32"  # f32 | bf16 (OpenVINO) | measure
    pixels_in_graph: bool = False  # uint8 pixels in, normalised inside the model (OpenVINO); pads rec with 128
    shape_buckets: bool = False  # inputs padded up to a few shapes (shapes.py), fewer kernels to prepare
    rec_min_width: int | None = None  # narrowest recognition input; None: the model's base width (320)
    pool_pages: bool = False  # recognise the crops of consecutive pages together
    fast_crops: bool = False  # bilinear affine crops instead of the cubic perspective warp
    rec_streams: int | str = 1  # recognition batches run side by side, splitting the threads (OpenVINO); measure
    det_logits: bool = False  # detection's sigmoid in numpy on the page's part of the map, not in the graph (OpenVINO)
    det_deconv_as_conv: bool = False  # the detection head's transposed convolutions as 1x1 ones, in bf16 (OpenVINO)
    rec_bf16_probs: bool = False  # recognition's probabilities handed over in bf16 where it runs in bf16 (OpenVINO)
    reason: str = "exact: the official pipeline's arithmetic"


EXACT = Profile()
KNOBS = tuple(f.name for f in dataclasses.fields(Profile) if f.name != "reason")
# The knobs that change OpenVINO's graph: on under use_hpip where a model may run on OpenVINO, and
# off on any other backend, whatever the overrides say.
GRAPH_KNOBS = ("pixels_in_graph", "det_logits", "det_deconv_as_conv", "rec_bf16_probs")


def profile(use_hpip: bool, device: Device, backend: str = "auto", overrides: dict | None = None) -> Profile:
    """The profile for these settings: exact, or use_hpip's for this device, then the overrides."""
    if not use_hpip:
        chosen = dataclasses.replace(EXACT, backend=backend)
    else:
        choice = choose(device)
        in_graph = choice.backend in ("openvino", MEASURE)  # where the model runs on OpenVINO
        chosen = Profile(choice.backend, choice.precision, shape_buckets=True, rec_min_width=32, pool_pages=True,
                         fast_crops=True, rec_streams=MEASURE if choice.backend == MEASURE else 1,
                         reason=choice.reason, **dict.fromkeys(GRAPH_KNOBS, in_graph))
    if overrides:
        unknown = set(overrides) - set(KNOBS)
        if unknown:
            raise ConfigError(f"hpip_profile: unknown setting {sorted(unknown)[0]!r}; known: {', '.join(KNOBS)}")
        chosen = dataclasses.replace(chosen, **overrides, reason=chosen.reason + " (with hpip_profile overrides)")
    if chosen.precision not in ("f32", "bf16", MEASURE):
        raise ConfigError(f"hpip_profile.precision must be f32, bf16 or {MEASURE}, got {chosen.precision!r}")
    if chosen.backend not in (*BACKENDS, MEASURE):
        raise ConfigError(f"hpip_profile.backend must be one of {', '.join((*BACKENDS, MEASURE))}, "
                          f"got {chosen.backend!r}")
    if chosen.rec_streams != MEASURE and not (isinstance(chosen.rec_streams, int) and chosen.rec_streams >= 1):
        raise ConfigError(f"hpip_profile.rec_streams must be a number >= 1 or {MEASURE}, got {chosen.rec_streams!r}")
    if MEASURE in (chosen.backend, chosen.precision) and device.kind == "gpu":
        raise ConfigError(f"hpip_profile: {MEASURE} is for the CPU; on {device} name the backend and precision")
    if chosen.backend not in ("openvino", MEASURE):  # only OpenVINO's graph is changed
        chosen = dataclasses.replace(chosen, **dict.fromkeys(GRAPH_KNOBS, False))
    return chosen
