"""Recurrent language models, as ``firth lm`` trains and uses them.

>>> import firth.lm
>>> lm = firth.lm.train("ptb.train.txt", valid="ptb.valid.txt", out="runs/ptb",
...                     preset="ptb-small", epochs=2)
>>> lm.perplexity("the company said it expects")
>>> lm.generate("the company", max_tokens=20, top_p=0.9, temperature=0.8)
>>> lm.hidden_states("the company said")        # numpy (tokens, hidden), top layer
>>> lm.tokenize("the company said")             # the rows: ['the', 'company', 'said', '<eos>']
>>> lm = firth.lm.load("runs/ptb")

``train`` takes ``firth lm train``'s options as keyword arguments, with the flag names
written with underscores: ``preset`` (``ptb-small``, ``ptb-medium``, ``char-shakespeare``),
``arch`` (``window``, ``rnn``, ``lstm``, ``gru``), ``level`` (``word``, ``char``),
``layers``, ``hidden``, ``emb``, ``bptt``, ``batch``, ``lr``, ``optim`` (``sgd``, ``adam``,
``adamw``), ``weight_decay``, ``clip``, ``clip_value``, ``dropout``, ``dropout_kind``,
``epochs``, ``lr_decay``, ``lr_decay_start``, ``plateau_decay``, ``init_range``,
``forget_bias``, ``tied``, ``residual``, ``context``, ``activation``, ``eval_batch``,
``checkpoint_every``, ``seed``. An unknown option is a ``TypeError``.
"""

from os import PathLike
from typing import Any, Optional, Union

from firth._firth import LanguageModel
from firth._firth import lm_train as _train

__all__ = ["LanguageModel", "train", "load"]

_Path = Union[str, "PathLike[str]"]


def train(
    train: _Path,
    *,
    out: _Path,
    valid: Optional[_Path] = None,
    test: Optional[_Path] = None,
    valid_fraction: float = 0.1,
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> LanguageModel:
    """Trains a language model into the directory ``out`` as ``firth lm train`` does
    (``model.safetensors``, ``checkpoint.safetensors``, ``metrics.csv``, ``summary.json``)
    and returns it loaded, with the run's figures in its ``summary`` dict.

    Without ``valid``, ``valid_fraction`` of the training lines are held out. ``resume``
    continues a stopped run; ``max_steps`` / ``max_seconds`` end it early (checkpoint kept).
    Ctrl-C stops it the same way, then raises ``KeyboardInterrupt``. ``threads`` sizes the
    process's thread pool (once per process).
    """
    return _train(
        str(train),
        out=str(out),
        valid=None if valid is None else str(valid),
        test=None if test is None else str(test),
        valid_fraction=valid_fraction,
        resume=resume,
        max_steps=max_steps,
        max_seconds=max_seconds,
        threads=threads,
        progress=progress,
        **options,
    )


def load(path: _Path) -> LanguageModel:
    """Loads a model directory written by ``firth lm train`` (or its model file)."""
    return LanguageModel(str(path))
