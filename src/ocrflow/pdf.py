"""PDF pages rendered in a child process that can be stopped (pdf_worker.py).

pdfium cannot be interrupted: a 9 KB page that repeats a drawing operator 200,000 times renders
for minutes, and a thread cannot be killed. So every document is read by a child process; the
parent waits for each page at most `render_timeout` seconds (or until a cancel event is set) and
then kills the child, which frees the CPU at once. The child's address space is capped, and a
pdfium crash ends only the child. Each error is an InputError naming the file and the page.

Children are kept for reuse (up to IDLE_WORKERS), so a document costs a pipe round trip and
the copy of its pixels, not a process start (benchmarks/fuzz.py --cost measures it).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from .errors import Cancelled, InputError
from .limits import Limits

WORKER = Path(__file__).with_name("pdf_worker.py")
IDLE_WORKERS = 4
POLL_S = 0.05  # how often a wait looks at the cancel event
CLOSED = b'{"ok": true}'  # the worker's answer to "close" (pdf_worker.py)
# The child's address space: its own ~30 MiB, pdfium's working memory, and the page's pixels (3
# bytes each) twice over for pdfium's intermediate buffers.
BASE_ADDRESS_SPACE = 1 << 30


def address_space(limits: Limits) -> int:
    return BASE_ADDRESS_SPACE + 6 * limits.max_pixels


class _Worker:
    """One child process and its two pipes."""

    def __init__(self):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), str(to_child_r), str(from_child_w), json.dumps(sys.path)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, close_fds=True,
            )
        except BaseException:
            os.close(to_child_w)
            os.close(from_child_r)
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.requests = Connection(to_child_w, readable=False)
        self.answers = Connection(from_child_r, writable=False)
        # True from a request until its whole answer (pixels included) is read: a worker given back
        # busy would hand the next document the rest of this answer.
        self.busy = False

    def send(self, header: dict, payload: bytes | None = None) -> None:
        self.busy = True
        self.requests.send_bytes(json.dumps(header).encode())
        if payload is not None:
            self.requests.send_bytes(payload)

    def wait(self, seconds: float, cancel: threading.Event | None) -> bool:
        """True once an answer is ready; False at the deadline (or when cancelled)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (cancel is not None and cancel.is_set()):
                return False
            if self.answers.poll(min(POLL_S, left)):
                return True

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.requests.close()
        self.answers.close()

    def alive(self) -> bool:
        return self.proc.poll() is None


_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked process (uvicorn workers, multiprocessing) must not share its parent's renderers."""
    global _idle_lock
    for worker in _idle:
        worker.requests.close()
        worker.answers.close()
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_after_fork)


def _take(label: str) -> _Worker:
    with _idle_lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive():
                return worker
    try:
        return _Worker()
    except Exception as exc:
        raise InputError(f"{label}: cannot start the PDF renderer process ({type(exc).__name__}: {exc})") from None


def _give_back(worker: _Worker) -> None:
    with _idle_lock:
        if len(_idle) < IDLE_WORKERS and worker.alive():
            _idle.append(worker)
            return
    worker.kill()


class PdfDocument:
    """A PDF opened in a child process: `len(doc)`, `doc.render(i)`; use as a context manager."""

    def __init__(self, data: bytes, label: str, limits: Limits = Limits(), cancel: threading.Event | None = None):
        self.label = label
        self.limits = limits
        self.cancel = cancel
        self.worker: _Worker | None = _take(label)
        try:
            answer = self._ask({"op": "open", "address_space": address_space(limits)}, data,
                               what="opening the PDF", seconds=limits.render_timeout)
            try:
                self.page_count = int(answer["pages"])
            except (KeyError, TypeError, ValueError):
                raise self._fail(f"the PDF renderer answered {str(answer)[:80]} to opening the PDF") from None
        except BaseException:
            self.close()  # a file pdfium refused leaves the renderer fit for the next one
            raise

    def __len__(self) -> int:
        return self.page_count

    def __enter__(self) -> PdfDocument:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        worker, self.worker = self.worker, None
        if worker is None:
            return
        if not worker.busy:  # an interrupted exchange (Ctrl-C, an error mid-answer): not reusable
            try:
                worker.send({"op": "close"})
                if worker.wait(self.limits.render_timeout, None) and worker.answers.recv_bytes(64) == CLOSED:
                    worker.busy = False
                    _give_back(worker)
                    return
            except Exception:
                pass
        worker.kill()

    def _drop(self) -> None:
        """Kill the child: after a timeout, crash or bad answer its state is unknown."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()

    def _fail(self, message: str) -> InputError:
        self._drop()
        return InputError(f"{self.label}: {message}")

    def _ask(self, header: dict, payload: bytes | None = None, *, what: str, seconds: float) -> dict:
        if self.worker is None:
            raise InputError(f"{self.label}: the PDF is closed")
        try:
            self.worker.send(header, payload)
            ready = self.worker.wait(seconds, self.cancel)
            answer = json.loads(self.worker.answers.recv_bytes(1 << 16)) if ready else None
        except (OSError, EOFError, ValueError):
            code = self.worker.proc.poll()
            cause = f"stopped (exit {code})" if code is not None else "sent an unreadable answer"
            raise self._fail(f"the PDF renderer {cause} while {what}: the file is broken or needs more "
                             "memory than allowed") from None
        if answer is not None and not isinstance(answer, dict):
            raise self._fail(f"the PDF renderer sent an unreadable answer while {what}")
        if answer is not None and (header["op"] != "render" or "error" in answer):
            self.worker.busy = False  # the whole answer is read (a page's pixels follow its header)
        if answer is None:
            self._drop()
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled(f"{self.label}: cancelled while {what}")
            raise InputError(f"{self.label}: {what} took longer than {seconds:g} s (render_timeout); stopped")
        if "error" in answer:
            if answer.get("limit") == "memory":  # the child's state is unknown after a MemoryError
                raise self._fail(f"{what} needs more memory than allowed (max_pixels)")
            if header["op"] == "open":
                error = answer["error"].lower()
                reason = "encrypted (password protected)" if "password" in error else f"broken ({answer['error']})"
                raise InputError(f"{self.label}: PDF cannot be opened: {reason}")
            raise InputError(f"{self.label}: {what}: {answer['error']}")
        return answer

    def render(self, index: int, scale: float) -> np.ndarray:
        """Page `index` as a BGR uint8 array at `scale` x 72 dpi."""
        what = f"page {index}"
        head = self._ask({"op": "render", "index": index, "scale": scale, "max_pixels": self.limits.max_pixels},
                         what=f"rendering {what}", seconds=self.limits.render_timeout)
        try:
            h, w, stride = int(head["height"]), int(head["width"]), int(head["stride"])
            buf = bytearray(h * stride)
        except (KeyError, TypeError, ValueError):
            raise self._fail(f"the PDF renderer answered {str(head)[:80]} to rendering {what}") from None
        except MemoryError:
            raise self._fail(f"{what} renders to more pixels than this process can hold") from None
        try:
            got = self.worker.answers.recv_bytes_into(buf)
        except (OSError, EOFError, multiprocessing.BufferTooShort):
            raise self._fail(f"the PDF renderer stopped while sending {what}") from None
        if got != len(buf):
            raise self._fail(f"the PDF renderer sent {got} bytes for {what}, expected {len(buf)}")
        self.worker.busy = False
        rows = np.frombuffer(buf, np.uint8).reshape(h, stride)
        if stride != w * 3:  # rows padded to 4 bytes
            return np.ascontiguousarray(rows[:, : w * 3]).reshape(h, w, 3)
        return rows.reshape(h, w, 3)


def pages(data: bytes, label: str, scale: float, limits: Limits = Limits(),
          cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Render a PDF page by page (BGR arrays at `scale` x 72 dpi), under `limits`."""
    with PdfDocument(data, label, limits, cancel) as doc:
        count = len(doc)
        if count == 0:
            raise InputError(f"{label}: PDF has no pages")
        if count > limits.max_pages and limits.page_overflow == "error":
            raise InputError(f"{label}: PDF has {count} pages, above the limit of {limits.max_pages} (max_pages)")
        for index in range(min(count, limits.max_pages)):
            yield doc.render(index, scale)
