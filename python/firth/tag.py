"""Sequence taggers (BiLSTM, BiLSTM-CRF, character features), as ``firth tag`` trains them.

>>> import firth.tag
>>> tagger = firth.tag.train("eng.train", dev="eng.testa", out="runs/ner", preset="conll03-ner")
>>> tagger.predict([["EU", "rejects", "German", "call"], "Peter lives in Berlin"])
>>> tagger.hidden_states(["EU", "rejects", "German", "call"])   # numpy (4, 2 x hidden)
>>> tagger = firth.tag.load("runs/ner")

Files are CoNLL columns (token first, tag last unless ``token_col``/``tag_col`` say).
Options are ``firth tag train``'s flags with underscores: ``preset`` (``conll03-ner``,
``ewt-upos``), ``cell``, ``layers``, ``hidden``, ``emb``, ``char_dim``, ``char_hidden``,
``dropout``, ``case_dim``, ``word_dropout``, ``char_dropout``, ``crf``, ``scheme``,
``init_range``, ``lr``, ``optim``, ``lr_decay``, ``weight_decay``, ``clip``, ``epochs``,
``batch``, ``cased``, ``freeze``, ``multichannel``, ``average``, ``document_vote``, ``seed``.
With ``document_vote=True`` the sentences of one ``predict`` call are one document.
"""

from os import PathLike
from typing import Any, Optional, Tuple, Union

from firth._firth import Tagger
from firth._firth import tag_train as _train

__all__ = ["Tagger", "train", "load"]

_Path = Union[str, "PathLike[str]"]


def train(
    train: _Path,
    *,
    out: _Path,
    dev: Optional[_Path] = None,
    test: Optional[_Path] = None,
    token_col: Optional[int] = None,
    tag_col: Optional[int] = None,
    embeddings: Optional[_Path] = None,
    char_lm: Optional[Tuple[_Path, _Path]] = None,
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> Tagger:
    """Trains a tagger into ``out`` as ``firth tag train`` does and returns the best
    epoch's model (with the run's ``summary``). ``char_lm`` is ``--char-lm``: the directories
    of a forward and a backward (``reverse=True``) character LM from ``firth.lm.train``."""
    return _train(
        str(train),
        out=str(out),
        dev=None if dev is None else str(dev),
        test=None if test is None else str(test),
        token_col=token_col,
        tag_col=tag_col,
        embeddings=None if embeddings is None else str(embeddings),
        char_lm=None if char_lm is None else (str(char_lm[0]), str(char_lm[1])),
        resume=resume,
        max_steps=max_steps,
        max_seconds=max_seconds,
        threads=threads,
        progress=progress,
        **options,
    )


def load(path: _Path) -> Tagger:
    """Loads a tagger directory written by ``firth tag train``."""
    return Tagger(str(path))
