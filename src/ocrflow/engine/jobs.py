"""Submitted model runs: what `Engine.submit` returns.

A recogniser with several batches to read submits them ahead (run_ahead), so that an engine running
requests side by side (OpenVINO streams) has the next batch while the current one is decoded. An
engine that runs one request at a time runs it when submitted.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..timing import StageTimer, stage


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


def run_ahead(model, items: Iterable[tuple[Any, np.ndarray]], timer: StageTimer | None = None,
              waited: str = "model") -> Iterator[tuple[Any, np.ndarray]]:
    """(key, first output) for each (key, input) of `items`, in order. Up to streams + 1 inputs are
    submitted ahead (one at a time where the engine has one stream), so that the requests stay busy
    while the caller reads an output; an output is valid until the next is drawn. The time spent
    submitting and waiting goes to `timer` as `waited`. Inputs are kept until their output is read,
    and if the caller stops early (an error), the requests already started finish first."""
    ahead = model.streams + (model.streams > 1)
    jobs: deque = deque()  # (key, input, job)

    def oldest() -> Iterator[tuple[Any, np.ndarray]]:
        key, _, job = jobs[0]
        with stage(timer, waited):
            out = job.result()
        yield key, out
        jobs.popleft()  # read: its request may run again
        job.release()

    try:
        for key, x in items:
            with stage(timer, waited):
                jobs.append((key, x, model.submit(x)))  # x is read in place
            if len(jobs) >= ahead:
                yield from oldest()
        while jobs:
            yield from oldest()
    finally:
        for _, _, job in jobs:
            with contextlib.suppress(Exception):  # the error that stopped the caller is the one to raise
                job.result()
            job.release()
