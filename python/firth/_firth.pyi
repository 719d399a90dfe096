"""Type stubs of the compiled module ``firth._firth`` (re-exported by the firth submodules)."""

from os import PathLike
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from firth.translate import Attention

_Path = Union[str, PathLike[str]]
_Term = Union[str, npt.ArrayLike, Tuple[Union[str, npt.ArrayLike], float]]
_Terms = Union[None, str, npt.ArrayLike, Sequence[_Term]]
_Sentences = Sequence[Union[str, Sequence[str]]]

__version__: str

class FirthError(ValueError):
    """Bad input or settings, with the command line's message."""

# firth.ngram

class Model:
    """An n-gram model (ARPA, or a firth binary: probing or trie), scored as ``kenlm.Model`` scores."""

    path: str
    def __init__(self, path: _Path, *, verify: bool = True) -> None: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def counts(self) -> List[int]: ...
    def score(self, sentence: str, bos: bool = True, eos: bool = True) -> float: ...
    def perplexity(self, sentence: str) -> float: ...
    def full_scores(
        self, sentence: str, bos: bool = True, eos: bool = True
    ) -> Iterator[Tuple[float, int, bool]]: ...
    def score_many(self, sentences: Sequence[str], bos: bool = True, eos: bool = True) -> List[float]: ...
    def perplexity_file(self, path: _Path) -> Dict[str, float]: ...
    def generate(
        self, count: int = 1, *, seed: int = 1, temperature: float = 1.0, max_len: int = 100
    ) -> List[str]: ...
    def __contains__(self, word: str) -> bool: ...

def build(
    files: Sequence[str],
    order: int,
    *,
    arpa: Optional[str] = None,
    binary: Optional[str] = None,
    memory: str = "1G",
    temp_dir: Optional[str] = None,
    in_memory: bool = False,
    discount_fallback: Optional[Sequence[float]] = None,
    prune: Sequence[int] = ...,
    vocab_limit: Optional[int] = None,
    chars: bool = False,
    skip_symbols: bool = False,
    smoothing: str = "kn",
    k: float = 1.0,
    alpha: float = 0.4,
    progress: bool = True,
) -> Dict[str, Any]: ...
def convert(
    input: str,
    output: str,
    to: str,
    *,
    q: Optional[int] = None,
    b: Optional[int] = None,
    chars: bool = False,
) -> int: ...

# firth.vectors

class KeyedVectors:
    """Word vectors with gensim's ``KeyedVectors`` queries; ``vectors`` is firth's buffer."""

    @staticmethod
    def load_word2vec_format(
        fname: _Path, binary: Optional[bool] = None, limit: Optional[int] = None
    ) -> KeyedVectors: ...
    @staticmethod
    def from_arrays(keys: Sequence[str], vectors: npt.NDArray[np.float32]) -> KeyedVectors: ...
    def save_word2vec_format(self, fname: _Path, binary: bool = False) -> None: ...
    @property
    def vectors(self) -> npt.NDArray[np.float32]: ...
    def get_normed_vectors(self) -> npt.NDArray[np.float32]: ...
    @property
    def vector_size(self) -> int: ...
    @property
    def index_to_key(self) -> List[str]: ...
    @property
    def key_to_index(self) -> Dict[str, int]: ...
    def get_index(self, key: str) -> int: ...
    def get_vector(self, key: str, norm: bool = False) -> npt.NDArray[np.float32]: ...
    @overload
    def __getitem__(self, key: str) -> npt.NDArray[np.float32]: ...
    @overload
    def __getitem__(self, key: Sequence[str]) -> npt.NDArray[np.float32]: ...
    def __contains__(self, key: str) -> bool: ...
    def has_index_for(self, key: str) -> bool: ...
    def __len__(self) -> int: ...
    def similarity(self, w1: str, w2: str) -> float: ...
    def distance(self, w1: str, w2: str) -> float: ...
    def most_similar(
        self,
        positive: _Terms = None,
        negative: _Terms = None,
        topn: Optional[int] = 10,
        restrict_vocab: Optional[int] = None,
    ) -> Any: ...
    def most_similar_cosmul(
        self,
        positive: _Terms = None,
        negative: _Terms = None,
        topn: Optional[int] = 10,
        restrict_vocab: Optional[int] = None,
    ) -> Any: ...
    def similar_by_word(
        self, word: str, topn: Optional[int] = 10, restrict_vocab: Optional[int] = None
    ) -> Any: ...
    def similar_by_vector(
        self, vector: npt.ArrayLike, topn: Optional[int] = 10, restrict_vocab: Optional[int] = None
    ) -> Any: ...
    def doesnt_match(self, words: Sequence[str]) -> str: ...
    def evaluate_word_analogies(
        self,
        analogies: _Path,
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
        similarity_function: str = "most_similar",
    ) -> Tuple[float, List[Dict[str, Any]]]: ...
    def evaluate_word_pairs(
        self,
        pairs: _Path,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> Tuple[Any, Any, float]: ...
    def _buffer_address(self) -> int: ...

def train_word2vec(corpus_file: str, **kwargs: Any) -> Tuple[KeyedVectors, Dict[str, Any]]: ...
def train_glove(corpus_file: str, **kwargs: Any) -> Tuple[KeyedVectors, Dict[str, Any]]: ...

# firth.lm, firth.classify, firth.tag

class LanguageModel:
    path: str
    summary: Optional[Dict[str, Any]]
    def __init__(self, path: _Path) -> None: ...
    def score(self, text: Union[str, Sequence[str]], *, batch: int = 1, bptt: int = 35) -> Dict[str, float]: ...
    def perplexity(self, text: Union[str, Sequence[str]]) -> float: ...
    def generate(
        self,
        prompt: str = "",
        *,
        max_tokens: int = 50,
        greedy: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        beam: Optional[int] = None,
        seed: int = 1,
    ) -> str: ...
    def hidden_states(
        self, text: Union[str, Sequence[str]], *, layer: Optional[int] = -1
    ) -> npt.NDArray[np.float32]: ...
    def tokenize(self, text: Union[str, Sequence[str]]) -> List[str]: ...
    @property
    def vocab(self) -> List[str]: ...
    def state_dict(self) -> Dict[str, npt.NDArray[np.float32]]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def config(self) -> Dict[str, Any]: ...

class Classifier:
    path: str
    labels: List[str]
    summary: Optional[Dict[str, Any]]
    def __init__(self, path: _Path) -> None: ...
    def predict(self, sentences: _Sentences) -> List[str]: ...
    def predict_proba(self, sentences: _Sentences) -> npt.NDArray[np.float32]: ...
    def sentence_vectors(self, sentences: _Sentences) -> npt.NDArray[np.float32]: ...
    def state_dict(self) -> Dict[str, npt.NDArray[np.float32]]: ...

class Tagger:
    path: str
    summary: Optional[Dict[str, Any]]
    def __init__(self, path: _Path) -> None: ...
    def predict(self, sentences: _Sentences) -> List[List[str]]: ...
    def hidden_states(self, sentence: Union[str, Sequence[str]]) -> npt.NDArray[np.float32]: ...
    def state_dict(self) -> Dict[str, npt.NDArray[np.float32]]: ...
    @property
    def tags(self) -> List[str]: ...

# firth.translate

class Translator:
    path: str
    summary: Optional[Dict[str, Any]]
    def __init__(self, path: _Path) -> None: ...
    def translate(
        self, sentences: _Sentences, *, beam: int = 1, alpha: float = 0.6, replace_unk: bool = False
    ) -> List[str]: ...
    def translate_n_best(
        self, sentences: _Sentences, n: int = 5, *, beam: int = 5, alpha: float = 0.6
    ) -> List[List[Tuple[str, float]]]: ...
    def evaluate(
        self,
        sources: _Sentences,
        references: _Sentences,
        *,
        beam: int = 1,
        alpha: float = 0.6,
        replace_unk: bool = False,
    ) -> Dict[str, float]: ...
    def attention(
        self, sentence: Union[str, Sequence[str]], *, beam: int = 1, alpha: float = 0.6
    ) -> Attention: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def state_dict(self) -> Dict[str, npt.NDArray[np.float32]]: ...

def lm_train(train: str, **kwargs: Any) -> LanguageModel: ...
def classify_train(train: str, **kwargs: Any) -> Union[Classifier, Dict[str, Any]]: ...
def tag_train(train: str, **kwargs: Any) -> Tagger: ...
def translate_train(train_src: str, train_tgt: str, **kwargs: Any) -> Translator: ...
def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    tokenize: str = "13a",
    lowercase: bool = False,
    smooth_method: str = "exp",
) -> Dict[str, Any]: ...
def corpus_chrf(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    word_order: int = 0,
    lowercase: bool = False,
) -> float: ...
