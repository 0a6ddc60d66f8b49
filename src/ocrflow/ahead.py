"""The next item of a generator made in a thread while this one works on the last.

Reading a page (file, JPEG decode, PDF render) is single-threaded work that the pipeline would
otherwise wait for between pages; decoding in a thread of its own overlaps it with the models'
forward passes, which release the GIL. Under use_hpip the next page's detection runs ahead the
same way. One item is made ahead at most, so the memory held grows by one page, and the items
come out in their order, errors in their place.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """items, each produced in a thread up to `depth` items before it is asked for. An exception
    raised by `items` is raised here, after the items before it. When this generator is closed
    (or dropped), the thread stops after the item in hand and closes `items` itself, so nothing
    reads from what `items` uses once this returns."""
    out: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)  # items produced and not yet taken, the one in hand included
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                item = next(items, _END)
                out.put((True, item))
                if item is _END:
                    return
        except BaseException as exc:  # raised in the caller's thread, where it belongs
            out.put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="ocrflow-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = out.get()
            if not ok:
                raise item
            if item is _END:
                return
            slots.release()
            yield item
    finally:
        stop.set()
        slots.release()  # a producer waiting for a slot wakes up and sees stop
        thread.join()
