"""Sentence classifiers, as ``firth classify`` trains and uses them.

>>> import firth.classify
>>> clf = firth.classify.train("train.tsv", dev="dev.tsv", out="runs/sent", epochs=5)
>>> clf.predict(["a gripping , funny film", "dull and far too long"])
>>> clf.predict_proba(["a gripping , funny film"])     # numpy (n, len(clf.labels))
>>> clf = firth.classify.load("runs/sent")

Data files are SST trees, TSV (``label<TAB>text``) or positive/negative pairs, detected from
the content unless ``format`` says. Options are ``firth classify train``'s flags with
underscores: ``preset`` (``sst2``, ``sst5``), ``cell``, ``layers``, ``hidden``, ``emb``,
``bidirectional``, ``pooling`` (``last``, ``mean``, ``max``, ``attention``), ``dropout``,
``lr``, ``optim``, ``weight_decay``, ``clip``, ``lr_decay``, ``epochs``, ``batch``,
``patience``, ``init_range``, ``freeze``, ``sst_binary``, ``phrases``, ``seed``.
"""

from os import PathLike
from typing import Any, Optional, Union

from firth._firth import Classifier
from firth._firth import classify_train as _train

__all__ = ["Classifier", "train", "load"]

_Path = Union[str, "PathLike[str]"]


def train(
    train: _Path,
    *,
    out: _Path,
    dev: Optional[_Path] = None,
    test: Optional[_Path] = None,
    format: Optional[str] = None,
    dev_fraction: float = 0.1,
    embeddings: Optional[_Path] = None,
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> Classifier:
    """Trains a classifier into ``out`` as ``firth classify train`` does and returns the
    best epoch's model (with the run's ``summary``). ``embeddings`` starts from pretrained
    word vectors (any format ``firth.vectors`` reads)."""
    return _train(
        str(train),
        out=str(out),
        dev=None if dev is None else str(dev),
        test=None if test is None else str(test),
        format=format,
        dev_fraction=dev_fraction,
        embeddings=None if embeddings is None else str(embeddings),
        resume=resume,
        max_steps=max_steps,
        max_seconds=max_seconds,
        threads=threads,
        progress=progress,
        **options,
    )


def load(path: _Path) -> Classifier:
    """Loads a classifier directory written by ``firth classify train``."""
    return Classifier(str(path))
