"""Per-stage wall-clock timing, for the benchmark; a no-op unless a StageTimer is passed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict

STAGES = ("decode", "doc_ori", "unwarp", "det_pre", "det_model", "det_wait", "det_post", "crop", "textline_ori",
          "rec_pre", "rec_model", "rec_decode")


class StageTimer:
    """Accumulates seconds per stage name, from any thread. Stages run in a thread ahead of the
    caller's overlap its own: "det_wait" is the caller's wait for detection run ahead."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] += took


_NULL = contextlib.nullcontext()


def stage(timer: StageTimer | None, name: str):
    return timer(name) if timer is not None else _NULL
