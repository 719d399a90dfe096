"""Sentence classifiers, as ``firth classify`` trains and uses them.

>>> import firth.classify
>>> clf = firth.classify.train("train.tsv", dev="dev.tsv", out="runs/sent", epochs=5)
>>> clf.predict(["a gripping , funny film", "dull and far too long"])
>>> clf.predict_proba(["a gripping , funny film"])     # numpy (n, len(clf.labels))
>>> clf.sentence_vectors(["a gripping , funny film"])  # numpy (n, D): the pooled features
>>> clf = firth.classify.load("runs/sent")
>>> cv = firth.classify.train("mr.tsv", out="runs/mr", folds=10)   # cross-validation
>>> cv["mean_accuracy"], cv["std_accuracy"], cv["fold_accuracy"]

Data files are SST trees, TSV (``label<TAB>text``) or positive/negative pairs, detected from
the content unless ``format`` says. Options are ``firth classify train``'s flags with
underscores: ``preset`` (``sst2``, ``sst5``), ``cell``, ``layers``, ``hidden``, ``emb``,
``bidirectional``, ``pooling`` (``last``, ``mean``, ``max``, ``attention``), ``dropout``, ``word_dropout``,
``lr``, ``optim``, ``weight_decay``, ``clip``, ``lr_decay``, ``epochs``, ``batch``,
``patience``, ``init_range``, ``freeze``, ``multichannel``, ``average``, ``sst_binary``, ``phrases``,
``seed``.
"""

from os import PathLike
from typing import Any, Dict, Optional, Tuple, Union, overload

from firth._firth import Classifier
from firth._firth import classify_train as _train

__all__ = ["Classifier", "train", "load"]

_Path = Union[str, "PathLike[str]"]


@overload
def train(train: _Path, *, out: _Path, folds: None = None, **kwargs: Any) -> Classifier: ...


@overload
def train(train: _Path, *, out: _Path, folds: int, **kwargs: Any) -> Dict[str, Any]: ...


def train(
    train: _Path,
    *,
    out: _Path,
    dev: Optional[_Path] = None,
    test: Optional[_Path] = None,
    format: Optional[str] = None,
    dev_fraction: float = 0.1,
    embeddings: Optional[_Path] = None,
    char_lm: Optional[Tuple[_Path, _Path]] = None,
    folds: Optional[int] = None,
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> Union[Classifier, Dict[str, Any]]:
    """Trains a classifier into ``out`` as ``firth classify train`` does and returns the
    best epoch's model (with the run's ``summary``). ``embeddings`` starts from pretrained
    word vectors (any format ``firth.vectors`` reads). ``char_lm`` is ``--char-lm``: the
    directories of a forward and a backward (``reverse=True``) character LM from
    ``firth.lm.train``, whose states around each word become frozen word features; both are
    copied into ``out``, so ``load(out)`` needs nothing else.

    With ``folds=K`` it is ``firth classify train --folds K`` instead: K-fold
    cross-validation over the training file's sentences (shuffled by ``seed``), each fold in
    turn the test set of a model trained on the others (models in ``out/fold-k``), and the
    result, also written to ``out/cv.json``, is returned as a dict: ``folds``, ``examples``,
    ``fold_accuracy`` (percent), ``mean_accuracy``, ``std_accuracy`` (sample standard
    deviation), ``fold_best_epoch``, ``wall_seconds``. It takes no ``test`` and no
    ``resume``; ``max_steps`` / ``max_seconds`` apply to each fold."""
    return _train(
        str(train),
        out=str(out),
        dev=None if dev is None else str(dev),
        test=None if test is None else str(test),
        format=format,
        dev_fraction=dev_fraction,
        embeddings=None if embeddings is None else str(embeddings),
        char_lm=None if char_lm is None else (str(char_lm[0]), str(char_lm[1])),
        folds=folds,
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
