"""read_ahead: the next page read in a thread, in order, one ahead, stopped when closed."""

import threading
import time

import pytest

from ocrflow.ahead import read_ahead


def test_items_come_in_order_from_another_thread():
    threads = []

    def items():
        for i in range(20):
            threads.append(threading.current_thread())
            yield i

    assert list(read_ahead(items())) == list(range(20))
    assert threading.current_thread() not in threads


def test_an_error_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("page 3 is broken")

    got = []
    with pytest.raises(ValueError, match="page 3 is broken"):
        for x in read_ahead(items()):
            got.append(x)
    assert got == [1, 2]


def test_no_more_than_one_item_is_read_ahead():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    gen = read_ahead(items())
    for i in range(5):
        assert next(gen) == i
        time.sleep(0.05)  # ample time for the thread to run ahead if it could
        assert len(produced) <= i + 2
    gen.close()


def test_closing_stops_the_thread_and_closes_the_source():
    closed = threading.Event()
    started = threading.Event()

    def items():
        try:
            for i in range(1000):
                started.set()
                time.sleep(0.01)
                yield i
        finally:
            closed.set()

    before = threading.active_count()
    gen = read_ahead(items())
    assert next(gen) == 0
    gen.close()
    assert closed.is_set()  # closed by the time close() returns: nothing reads from the source after
    assert threading.active_count() == before


def test_an_empty_source():
    assert list(read_ahead(iter(()))) == []
