"""The GIL is released while firth works, and Ctrl-C stops a long job cleanly."""

import threading
import time

import pytest

from conftest import ctrl_c_after
from firth.vectors import Word2Vec


def test_a_python_thread_keeps_running_while_firth_trains(big_corpus_file):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        before = ticks
        start = time.perf_counter()
        Word2Vec(corpus_file=big_corpus_file, vector_size=32, min_count=1, epochs=3,
                 workers=1, progress=False)
        seconds = time.perf_counter() - start
        during = ticks - before
    finally:
        stop.set()
        t.join()
    assert seconds > 0.2, "training too short to tell"
    # With the GIL held for the whole call the counter could not move at all.
    assert during > 10_000, (during, seconds)


def test_ctrl_c_stops_training_with_keyboard_interrupt(big_corpus_file):
    start = time.perf_counter()
    with ctrl_c_after(0.5), pytest.raises(KeyboardInterrupt):
        Word2Vec(corpus_file=big_corpus_file, vector_size=32, min_count=1, epochs=10_000,
                 workers=2, progress=False)
    assert time.perf_counter() - start < 10
