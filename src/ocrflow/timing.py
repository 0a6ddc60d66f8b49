"""Per-stage wall-clock timing, for the benchmark; a no-op unless a StageTimer is passed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict

STAGES = ("decode", "doc_ori", "unwarp", "det_pre", "det_model", "det_wait", "det_post", "crop", "textline_ori",
          "rec_pre", "rec_model", "rec_decode")


MODEL_STAGES = ("det_model", "rec_model")
MODELS = "models"  # the seconds in which at least one model stage ran: their union, overlaps counted once


class StageTimer:
    """Accumulates seconds per stage name, from any thread. Stages run in a thread ahead of the
    caller's overlap its own: "det_wait" is the caller's wait for detection run ahead, and
    seconds[MODELS] the wall time in which some model ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._models_running = 0
        self._models_since = 0.0

    @contextlib.contextmanager
    def __call__(self, stage: str):
        model = stage in MODEL_STAGES
        start = time.perf_counter()
        if model:
            with self._lock:
                if self._models_running == 0:
                    self._models_since = start
                self._models_running += 1
        try:
            yield
        finally:
            end = time.perf_counter()
            with self._lock:
                self.seconds[stage] += end - start
                if model:
                    self._models_running -= 1
                    if self._models_running == 0:
                        self.seconds[MODELS] += end - self._models_since


_NULL = contextlib.nullcontext()


def stage(timer: StageTimer | None, name: str):
    return timer(name) if timer is not None else _NULL
