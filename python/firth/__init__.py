"""firth from Python: classic neural NLP, written in Rust, with the APIs you already use.

- :mod:`firth.ngram` is shaped like the ``kenlm`` module (``Model(path)``, ``score``,
  ``perplexity``, ``full_scores``) and builds models as ``firth ngram build`` does.
- :mod:`firth.vectors` is shaped like gensim (``Word2Vec``, ``KeyedVectors`` with
  ``most_similar``, ``evaluate_word_analogies``, ...), plus ``GloVe``.
- :mod:`firth.lm`, :mod:`firth.tag`, :mod:`firth.classify` train, load and run the recurrent
  models of ``firth lm``, ``firth tag`` and ``firth classify``; :mod:`firth.translate` the
  attentional encoder-decoder of ``firth translate``, with sacrebleu's BLEU and chrF.
  Hidden states, sentence vectors and attention weights come out as numpy arrays.

Long jobs run with the GIL released (other Python threads keep running), show the command
line's progress on stderr (``progress=False`` turns it off) and stop on Ctrl-C with
``KeyboardInterrupt``. Errors are Python exceptions carrying the command line's messages:
:class:`FirthError` (a ``ValueError``) for bad input or settings, ``OSError`` and its
subclasses for files.
"""

from firth._firth import FirthError, __version__

__all__ = ["FirthError", "__version__", "ngram", "vectors", "lm", "tag", "classify",
           "translate"]


def __getattr__(name: str):
    # Submodules load on first use, so `import firth` stays quick.
    if name in ("ngram", "vectors", "lm", "tag", "classify", "translate"):
        import importlib

        return importlib.import_module(f"firth.{name}")
    raise AttributeError(f"module 'firth' has no attribute '{name}'")
