"""Count n-gram language models, shaped like the ``kenlm`` module.

>>> import firth.ngram as kenlm          # or: from firth import ngram
>>> m = kenlm.Model("lm.arpa")           # ARPA (plain or compressed) or firth's binary (probing or trie)
>>> m.score("the cat sat", bos=True, eos=True)   # log10 probability
>>> m.perplexity("the cat sat")
>>> list(m.full_scores("the cat sat"))  # [(log10 prob, n-gram length, oov), ...]
>>> m.order, "cat" in m

``build`` counts text and estimates a model as ``firth ngram build`` does (modified
Kneser-Ney equal to KenLM's lmplz, add-k, stupid backoff; pruning; a memory budget).
"""

from os import PathLike
from typing import Dict, List, Optional, Sequence, Union

from firth._firth import Model
from firth._firth import build as _build
from firth._firth import convert as _convert

#: kenlm's other name for :class:`Model`.
LanguageModel = Model

__all__ = ["Model", "LanguageModel", "build", "convert"]

_Path = Union[str, "PathLike[str]"]


def build(
    files: Union[_Path, Sequence[_Path]],
    order: int,
    *,
    arpa: Optional[_Path] = None,
    binary: Optional[_Path] = None,
    memory: str = "1G",
    temp_dir: Optional[_Path] = None,
    in_memory: bool = False,
    discount_fallback: Optional[Sequence[float]] = None,
    prune: Sequence[int] = (),
    vocab_limit: Optional[int] = None,
    chars: bool = False,
    skip_symbols: bool = False,
    smoothing: str = "kn",
    k: float = 1.0,
    alpha: float = 0.4,
    progress: bool = True,
) -> Dict[str, object]:
    """Counts ``files`` (one sentence per line) and writes an order-``order`` model.

    The options are ``firth ngram build``'s (lmplz's): ``arpa`` and/or ``binary`` name the
    outputs; ``memory`` bounds the whole build (``"500M"``, ``"2G"``, ``"40%"``), spilling to
    ``temp_dir``; ``in_memory`` estimates without temporary files; ``discount_fallback``
    gives discounts (up to three) where the closed-form estimate fails (``[]`` for 0.5 1 1.5);
    ``prune`` thresholds per order (the last repeats); ``vocab_limit`` keeps only the most
    frequent words; ``chars`` models characters; ``skip_symbols`` treats ``<s>``, ``</s>``,
    ``<unk>`` in the text as whitespace; ``smoothing`` is ``"kn"``, ``"add-k"`` (with ``k``)
    or ``"stupid"`` (with ``alpha``).

    Returns a summary dict: sentences, words, types, counts per order, Kneser-Ney discounts
    per order (D1, D2, D3+), binary_bytes, seconds. Runs with the GIL released.
    """
    if isinstance(files, (str, PathLike)):
        files = [files]
    return _build(
        [str(f) for f in files],
        order,
        arpa=None if arpa is None else str(arpa),
        binary=None if binary is None else str(binary),
        memory=memory,
        temp_dir=None if temp_dir is None else str(temp_dir),
        in_memory=in_memory,
        discount_fallback=None if discount_fallback is None else list(discount_fallback),
        prune=list(prune),
        vocab_limit=vocab_limit,
        chars=chars,
        skip_symbols=skip_symbols,
        smoothing=smoothing,
        k=k,
        alpha=alpha,
        progress=progress,
    )


def convert(
    input: _Path,
    output: _Path,
    to: str,
    *,
    q: Optional[int] = None,
    b: Optional[int] = None,
    chars: bool = False,
) -> int:
    """Rewrites a model file as ``to="arpa"``, ``"probing"`` or ``"trie"`` (``firth ngram
    convert``). ``q`` and ``b`` quantize a trie's probabilities and backoffs to that many bits
    (``b`` defaults to ``q``), as KenLM's ``build_binary -q -b trie``. The input is an ARPA
    file (plain or compressed) or a trie; a probing file keeps only hashes of the n-grams and
    cannot be converted. Returns the output's size in bytes. Runs with the GIL released.
    """
    return _convert(str(input), str(output), to, q=q, b=b, chars=chars)
