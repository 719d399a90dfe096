"""Shared fixtures: small corpora made in the test, and the repository's own fixture files."""

import _thread
import contextlib
import random
import signal
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NGRAM_FIXTURES = REPO / "crates" / "firth-ngram" / "tests" / "fixtures"
#: A toy German-English parallel corpus (48 training pairs, 8 held out).
TRANSLATE_FIXTURES = REPO / "crates" / "firth-cli" / "tests" / "fixtures" / "translate"
#: BLEU and chrF fixtures with the values sacrebleu 2.6.0 computed (expected.json).
BLEU_FIXTURES = REPO / "crates" / "firth-eval" / "tests" / "fixtures" / "bleu"


@pytest.fixture(scope="session")
def toy_arpa() -> Path:
    """An order-3 ARPA file written by KenLM's lmplz on toy.txt."""
    return NGRAM_FIXTURES / "toy.kenlm.o3.arpa"


@pytest.fixture(scope="session")
def toy_text() -> Path:
    return NGRAM_FIXTURES / "toy.txt"


def _sentences(n: int, seed: int = 7):
    """Sentences from a small grammar in which words of a class share their contexts, so that
    even a few epochs of word2vec put them near each other."""
    rng = random.Random(seed)
    animals = ["cat", "dog", "horse", "cow", "sheep", "goat"]
    foods = ["bread", "cheese", "apple", "rice", "soup", "cake"]
    verbs = ["eats", "likes", "wants", "finds"]
    places = ["paris", "london", "rome", "berlin", "madrid"]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(["the", rng.choice(animals), rng.choice(verbs), "the", rng.choice(foods)])
        else:
            out.append(["we", "went", "to", rng.choice(places), "by", "train"])
    return out


@pytest.fixture(scope="session")
def sentences():
    return _sentences(4000)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory, sentences) -> Path:
    p = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    p.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def big_corpus_file(tmp_path_factory) -> Path:
    """Enough text that training takes a while (for the GIL and Ctrl-C tests)."""
    p = tmp_path_factory.mktemp("big") / "big.txt"
    p.write_text("".join(" ".join(s) + "\n" for s in _sentences(60000, seed=3)), encoding="utf-8")
    return p


@contextlib.contextmanager
def ctrl_c_after(seconds: float):
    """Presses Ctrl-C (SIGINT to the main thread) after `seconds`. Python's handler is put in
    place for the duration: a process started in the background of a non-interactive shell
    inherits SIGINT ignored, and then Ctrl-C (and `_thread.interrupt_main`) does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
