"""Word vectors, shaped like gensim: ``Word2Vec``, ``KeyedVectors``, and ``GloVe``.

>>> from firth.vectors import Word2Vec, KeyedVectors
>>> model = Word2Vec(corpus_file="text8", vector_size=100, window=5, min_count=5, sg=1,
...                  negative=5, sample=1e-4, epochs=5, workers=2)
>>> model.wv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)
>>> model.wv.evaluate_word_analogies("questions-words.txt")[0]
>>> model.wv.vectors            # float32 (len, vector_size), firth's own buffer (no copy)
>>> model.wv.save_word2vec_format("vectors.bin", binary=True)
>>> kv = KeyedVectors.load_word2vec_format("vectors.bin", binary=True)

Training reads a corpus file (one sentence per line) with several threads, as ``firth
vectors word2vec`` does; ``sentences=`` (an iterable of token lists) is written to a
temporary file first. The defaults are gensim's.
"""

import os
import tempfile
from os import PathLike
from typing import Dict, Iterable, List, Optional, Sequence, Union

from firth._firth import KeyedVectors
from firth._firth import train_glove as _train_glove
from firth._firth import train_word2vec as _train_word2vec

__all__ = ["Word2Vec", "GloVe", "KeyedVectors"]

_Path = Union[str, "PathLike[str]"]


def _corpus(sentences: Optional[Iterable[Sequence[str]]], corpus_file: Optional[_Path]):
    """The corpus file to train on, and whether it is a temporary one to delete."""
    if (sentences is None) == (corpus_file is None):
        raise TypeError("give exactly one of corpus_file= (a text file) or sentences= (token lists)")
    if corpus_file is not None:
        return os.fspath(corpus_file), False
    fd, path = tempfile.mkstemp(prefix="firth-corpus-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for n, tokens in enumerate(sentences):
                if isinstance(tokens, str):
                    raise TypeError(
                        f"sentence {n + 1} is a str; give each sentence as a list of tokens"
                    )
                line = " ".join(tokens)
                if len(line.split()) != len(tokens):
                    raise ValueError(
                        f"sentence {n + 1}: a token is empty or contains whitespace; "
                        "firth's corpus is whitespace-separated text"
                    )
                f.write(line)
                f.write("\n")
    except BaseException:
        os.unlink(path)
        raise
    return path, True


class Word2Vec:
    """Trains skip-gram (``sg=1``) or CBOW (``sg=0``) vectors with negative sampling
    (``negative``) and/or hierarchical softmax (``hs=1``), as gensim's ``Word2Vec`` does.

    Give ``corpus_file`` (whitespace-separated text, one sentence per line: the fast path)
    or ``sentences`` (an iterable of token lists). ``workers`` threads train Hogwild-style,
    each on its own slice of the file. ``max_final_vocab`` keeps only the most frequent
    words. ``progress`` shows the command line's progress bar on stderr.

    After training: ``wv`` (:class:`KeyedVectors`), and ``summary`` (words_per_second,
    train_seconds, vocab_size, words_processed, final_loss, ...).
    """

    def __init__(
        self,
        sentences: Optional[Iterable[Sequence[str]]] = None,
        corpus_file: Optional[_Path] = None,
        vector_size: int = 100,
        alpha: float = 0.025,
        window: int = 5,
        min_count: int = 5,
        max_final_vocab: Optional[int] = None,
        sample: float = 1e-3,
        seed: int = 1,
        workers: int = 3,
        sg: int = 0,
        hs: int = 0,
        negative: int = 5,
        epochs: int = 5,
        progress: bool = True,
    ) -> None:
        self.vector_size = vector_size
        self.alpha = alpha
        self.window = window
        self.min_count = min_count
        self.max_final_vocab = max_final_vocab
        self.sample = sample
        self.seed = seed
        self.workers = workers
        self.sg = int(sg)
        self.hs = int(hs)
        self.negative = negative
        self.epochs = epochs
        path, temporary = _corpus(sentences, corpus_file)
        try:
            self.wv, self.summary = _train_word2vec(
                path,
                vector_size=vector_size,
                window=window,
                min_count=min_count,
                max_vocab=max_final_vocab or 0,
                sg=bool(sg),
                hs=bool(hs),
                negative=negative,
                sample=sample,
                alpha=alpha,
                epochs=epochs,
                workers=workers,
                seed=seed,
                progress=progress,
            )
        finally:
            if temporary:
                os.unlink(path)

    def __repr__(self) -> str:
        return (
            f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, "
            f"alpha={self.alpha}>"
        )


class GloVe:
    """Trains GloVe vectors (Pennington et al. 2014) as ``firth vectors glove`` does:
    co-occurrence counting within ``memory`` gigabytes (spilling to disk beyond it), a
    shuffle, then AdaGrad on the weighted least-squares objective with f(x) =
    (x / x_max)^alpha. ``vectors`` chooses the word matrix, the context matrix or their sum
    (``"sum"``, GloVe's default).

    After training: ``wv`` (:class:`KeyedVectors`) and ``summary``.
    """

    def __init__(
        self,
        sentences: Optional[Iterable[Sequence[str]]] = None,
        corpus_file: Optional[_Path] = None,
        vector_size: int = 50,
        window: int = 15,
        x_max: float = 10.0,
        alpha: float = 0.75,
        eta: float = 0.05,
        epochs: int = 15,
        min_count: int = 5,
        max_final_vocab: Optional[int] = None,
        memory: float = 4.0,
        workers: int = 2,
        seed: int = 1,
        vectors: str = "sum",
        progress: bool = True,
    ) -> None:
        self.vector_size = vector_size
        self.window = window
        self.x_max = x_max
        self.alpha = alpha
        self.eta = eta
        self.epochs = epochs
        self.min_count = min_count
        self.workers = workers
        self.seed = seed
        path, temporary = _corpus(sentences, corpus_file)
        try:
            self.wv, self.summary = _train_glove(
                path,
                vector_size=vector_size,
                window=window,
                x_max=x_max,
                alpha=alpha,
                eta=eta,
                epochs=epochs,
                min_count=min_count,
                max_vocab=max_final_vocab or 0,
                memory=memory,
                workers=workers,
                seed=seed,
                vectors=vectors,
                progress=progress,
            )
        finally:
            if temporary:
                os.unlink(path)

    def __repr__(self) -> str:
        return f"GloVe<vocab={len(self.wv)}, vector_size={self.vector_size}>"
