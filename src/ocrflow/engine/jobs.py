"""Submitted model runs: what `Engine.submit` returns.

A recogniser with several batches to read submits them ahead, so that an engine running requests
side by side (OpenVINO streams) has the next batch while the current one is decoded. An engine that
runs one request at a time runs it when submitted.
"""

from __future__ import annotations

import numpy as np


class Finished:
    """A run done when it was submitted."""

    def __init__(self, out: np.ndarray):
        self._out = out

    def result(self) -> np.ndarray:
        return self._out

    def release(self) -> None:
        self._out = None


class RunsNow:
    """Engine mixin: one request at a time, so submit() runs the input at once."""

    streams = 1

    def submit(self, x: np.ndarray) -> Finished:
        """The first output of x, as a job; it may be a view that the next run overwrites."""
        return Finished(self.run(x, copy=False))
