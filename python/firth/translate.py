"""Neural machine translation (attentional encoder-decoder), as ``firth translate`` trains and
uses it, and corpus BLEU / chrF computed as sacrebleu computes them.

>>> import firth.translate
>>> tr = firth.translate.train("train.de", "train.en", valid_src="val.de", valid_tgt="val.en",
...                            out="runs/de-en", preset="multi30k-de-en")
>>> tr.translate(["ein mann fährt fahrrad ."], beam=5)       # a list of str
>>> a = tr.attention("ein mann fährt fahrrad .")
>>> a.weights.shape                      # (target tokens + </s>, source tokens)
>>> tr.evaluate(sources, references, beam=5)["bleu"]
>>> firth.translate.corpus_bleu(hypotheses, [references]).score
>>> tr = firth.translate.load("runs/de-en")

Files are line-aligned, one tokenised sentence per line. Options are ``firth translate
train``'s flags with underscores: ``preset`` (``multi30k-de-en``, ``multi30k-en-de``),
``cell`` (``lstm``, ``gru``), ``attention`` (``none``, ``dot``, ``general``, ``additive``),
``layers``, ``enc_layers``, ``dec_layers``, ``emb``, ``hidden``, ``dec_hidden``,
``no_input_feeding``, ``dropout``, ``label_smoothing``, ``tied``, ``init_range``, ``epochs``,
``lr``, ``warmup_steps``, ``plateau_decay``, ``patience``, ``clip``, ``batch_tokens``,
``batch_sentences``, ``min_count``, ``bpe_merges``, ``max_len``, ``beam``, ``alpha``,
``no_valid_bleu``, ``checkpoint_every``, ``seed``. An unknown option is a ``TypeError``.
"""

from os import PathLike
from typing import Any, List, NamedTuple, Optional, Sequence, Union

import numpy as np

from firth._firth import Translator
from firth._firth import corpus_bleu as _corpus_bleu
from firth._firth import corpus_chrf as _corpus_chrf
from firth._firth import translate_train as _train

__all__ = ["Translator", "Attention", "BLEUScore", "CHRFScore", "train", "load",
           "corpus_bleu", "corpus_chrf"]

_Path = Union[str, "PathLike[str]"]
_Sentence = Union[str, Sequence[str]]


class Attention(NamedTuple):
    """One sentence's translation and the attention that produced it
    (:meth:`Translator.attention`)."""

    translation: str
    #: The source tokens as the model read them (subwords for a BPE model).
    source: List[str]
    #: The output tokens, then ``</s>``.
    target: List[str]
    #: float32 (len(target), len(source)); row t is output step t's weights over the source.
    weights: np.ndarray


class BLEUScore(NamedTuple):
    """Corpus BLEU with sacrebleu's ``BLEUScore`` fields (percentages on 0-100)."""

    score: float
    counts: List[int]
    totals: List[int]
    precisions: List[float]
    bp: float
    sys_len: int
    ref_len: int
    ratio: float
    text: str

    def __str__(self) -> str:
        return self.text


class CHRFScore(NamedTuple):
    """Corpus chrF (``name`` is sacrebleu's: chrF2, chrF2++)."""

    score: float
    name: str

    def __str__(self) -> str:
        return f"{self.name} = {self.score:.2f}"


def train(
    train_src: _Path,
    train_tgt: _Path,
    *,
    out: _Path,
    valid_src: Optional[_Path] = None,
    valid_tgt: Optional[_Path] = None,
    test_src: Optional[_Path] = None,
    test_tgt: Optional[_Path] = None,
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> Translator:
    """Trains a translator into ``out`` as ``firth translate train`` does
    (``model.safetensors``, ``checkpoint.safetensors``, ``metrics.csv``, ``summary.json``,
    ``test.hyp``; ``bpe.codes`` with ``bpe_merges``) and returns the best epoch's model with
    the run's figures in its ``summary`` dict (development and test BLEU, speed).

    The development set picks the best epoch (by greedy BLEU, or perplexity with
    ``no_valid_bleu=True``); the test set is translated once at the end with ``beam``.
    ``resume`` continues a stopped run; ``max_steps`` / ``max_seconds`` end it early
    (checkpoint kept). Ctrl-C stops it the same way, then raises ``KeyboardInterrupt``.
    ``threads`` sizes the process's thread pool (once per process).
    """
    return _train(
        str(train_src),
        str(train_tgt),
        out=str(out),
        valid_src=None if valid_src is None else str(valid_src),
        valid_tgt=None if valid_tgt is None else str(valid_tgt),
        test_src=None if test_src is None else str(test_src),
        test_tgt=None if test_tgt is None else str(test_tgt),
        resume=resume,
        max_steps=max_steps,
        max_seconds=max_seconds,
        threads=threads,
        progress=progress,
        **options,
    )


def load(path: _Path) -> Translator:
    """Loads a translator directory written by ``firth translate train`` (a BPE model reads
    its ``bpe.codes`` from there)."""
    return Translator(str(path))


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    tokenize: str = "13a",
    lowercase: bool = False,
    smooth_method: str = "exp",
) -> BLEUScore:
    """Corpus BLEU as ``sacrebleu.corpus_bleu(hypotheses, references)`` computes it (sacrebleu
    2.x: mteval-v13a tokenisation or ``"none"``, ``exp`` or ``none`` smoothing, the closest
    reference length). ``references`` is a list of reference streams, each as long as
    ``hypotheses``: ``[refs]`` for one reference per sentence."""
    d = _corpus_bleu(hypotheses, references, tokenize=tokenize, lowercase=lowercase,
                     smooth_method=smooth_method)
    return BLEUScore(score=d["score"], counts=d["counts"], totals=d["totals"],
                     precisions=d["precisions"], bp=d["brevity_penalty"],
                     sys_len=d["hyp_len"], ref_len=d["ref_len"], ratio=d["ratio"],
                     text=d["text"])


def corpus_chrf(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    word_order: int = 0,
    lowercase: bool = False,
) -> CHRFScore:
    """Corpus chrF as ``sacrebleu.corpus_chrf(hypotheses, references)`` computes it: chrF2
    by default, chrF++ with ``word_order=2``. ``references`` is a list of reference
    streams, as for :func:`corpus_bleu`."""
    score = _corpus_chrf(hypotheses, references, word_order=word_order, lowercase=lowercase)
    return CHRFScore(score=score, name="chrF2" + "+" * word_order)
