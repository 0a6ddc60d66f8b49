"""memory.py: freed heap goes back to the OS, and the pipeline trims every TRIM_EVERY predictions."""

from __future__ import annotations

import ctypes
import dataclasses

import numpy as np
import pytest

from ocrflow import memory


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_trim_returns_freed_heap_pages():
    if memory._trim is None:
        pytest.skip("this C library has no malloc_trim")
    libc = ctypes.CDLL(None)
    libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 80 MiB of small blocks (below the mmap threshold, so on the heap), written to, then freed with
    # one block above them still in use: the free space is inside the heap, where malloc keeps it.
    blocks = [libc.malloc(4096) for _ in range(20480)]
    fence = libc.malloc(4096)
    for b in blocks:
        ctypes.memset(b, 1, 4096)
    for b in blocks:
        libc.free(b)
    before = rss_mib()
    assert memory.trim()
    after = rss_mib()
    libc.free(fence)
    assert before - after > 40, (before, after)


def test_pipeline_trims_every_trim_every_predictions_with_process_tuning(pipeline, monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "TRIM_EVERY", 3)
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)
    image = np.full((64, 64, 3), 255, np.uint8)
    for _ in range(9):
        next(pipeline.predict(image))
    assert calls == []  # a library leaves the process's allocator alone by default
    monkeypatch.setattr(pipeline, "config", dataclasses.replace(pipeline.config, process_tuning=True))
    for _ in range(9):
        next(pipeline.predict(image))
    assert len(calls) == 3


def test_trim_every_zero_turns_trimming_off(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "TRIM_EVERY", 0)
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)
    for _ in range(5):
        memory.after_prediction()
    assert calls == []


@pytest.fixture
def hugepage_request():
    """NumPy's huge-page request, read by setting it (its setter returns the previous setting)
    and put back as it was after the test."""
    switch = memory._hugepage_switch()
    if switch is None:
        pytest.skip("this NumPy has no huge-page switch")
    before = switch(True)
    switch(before)

    def state() -> bool:
        now = switch(True)
        switch(now)
        return bool(now)

    yield switch, state
    switch(before)


def test_small_pages_turns_numpys_huge_page_request_off(hugepage_request, monkeypatch):
    switch, state = hugepage_request
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    switch(True)
    assert memory.small_pages() is True and state() is False
    assert memory.small_pages() is False  # already off
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's choice stands
    switch(True)
    assert memory.small_pages() is False and state() is True


def test_pipeline_asks_for_small_pages_only_with_process_tuning(hugepage_request, monkeypatch):
    from ocrflow import create_pipeline

    switch, state = hugepage_request
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    switch(True)
    create_pipeline("OCR")
    assert state() is True  # a library leaves NumPy's setting alone by default
    create_pipeline("OCR", process_tuning=True)
    assert state() is False
