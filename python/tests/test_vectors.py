import math

import numpy as np
import pytest

import firth
from firth.vectors import GloVe, KeyedVectors, Word2Vec

ANALOGIES = """: royal
man king woman queen
MAN KING WOMAN QUEEN
man king woman apple
: other
man king robot queen
bad line
"""

PAIRS = "# comment\nman\tking\t9\nman\twoman\t1\nking\tqueen\t5\nman\trobot\t3\nqueen\tapple\t2\n"


@pytest.fixture
def toy():
    """A hand-made 2-D space in which king - man + woman is exactly queen."""
    keys = ["man", "woman", "king", "queen", "apple", "Apple"]
    data = np.array(
        [[1.0, 0.0], [0.0, 1.0], [1.0, 0.2], [0.2, 1.0], [-1.0, -0.3], [5.0, 5.0]],
        dtype=np.float32,
    )
    return KeyedVectors.from_arrays(keys, data)


def test_word2vec_trains_from_a_file_and_from_token_lists(corpus_file, sentences):
    m = Word2Vec(corpus_file=corpus_file, vector_size=16, window=3, min_count=1, sg=1,
                 negative=5, epochs=3, workers=2, seed=1, progress=False)
    wv = m.wv
    assert wv.vector_size == 16 and m.summary["vocab_size"] == len(wv)
    assert wv.vectors.shape == (len(wv), 16) and wv.vectors.dtype == np.float32
    assert wv.index_to_key[0] == "the"  # most frequent first
    assert wv.key_to_index["the"] == 0
    # Words of a class share contexts, so they end up nearer each other than other words.
    near = [w for w, _ in wv.most_similar("cat", topn=5)]
    assert set(near) & {"dog", "horse", "cow", "sheep", "goat"}, near
    assert wv.similarity("paris", "rome") > wv.similarity("paris", "cheese")
    assert wv.doesnt_match(["cat", "dog", "horse", "paris"]) == "paris"
    # The same corpus as token lists: the same words, and the same vectors with one worker.
    a = Word2Vec(corpus_file=corpus_file, vector_size=8, min_count=1, epochs=1, workers=1,
                 progress=False)
    b = Word2Vec(sentences=sentences, vector_size=8, min_count=1, epochs=1, workers=1,
                 progress=False)
    assert a.wv.index_to_key == b.wv.index_to_key
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)


def test_vectors_are_firths_buffer_not_a_copy(corpus_file):
    wv = Word2Vec(corpus_file=corpus_file, vector_size=8, min_count=1, epochs=1,
                  progress=False).wv
    v = wv.vectors
    assert v.ctypes.data == wv._buffer_address()
    assert wv.vectors.ctypes.data == v.ctypes.data  # every access, the same memory
    assert v.base is wv  # the array keeps the vectors alive
    assert not v.flags.writeable
    with pytest.raises(ValueError):
        v[0, 0] = 1.0
    row = wv["cat"]
    assert row.ctypes.data == v[wv.get_index("cat")].ctypes.data
    del wv
    assert np.isfinite(v).all()  # still valid: the array holds the buffer


def test_gensim_shaped_queries(toy):
    r = toy.most_similar(positive=["king", "woman"], negative=["man"], topn=1)
    assert r[0][0] == "queen" and isinstance(r[0][1], float)
    assert toy.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    # Weights and raw vectors, as gensim takes them.
    assert toy.most_similar(positive=[("king", 1.0), ("woman", 1.0), ("man", -1.0)], topn=1)[0][0] == "queen"
    assert toy.similar_by_vector(np.array([1.0, 0.0]), topn=1)[0] == ("man", pytest.approx(1.0))
    all_sims = toy.most_similar("man", topn=None)
    assert isinstance(all_sims, np.ndarray) and all_sims.shape == (6,)
    assert toy.most_similar("queen", topn=5, restrict_vocab=2) == [
        ("woman", pytest.approx(toy.similarity("queen", "woman"))),
        ("man", pytest.approx(toy.similarity("queen", "man"))),
    ]
    assert toy.distance("man", "man") == pytest.approx(0.0, abs=1e-6)
    assert "king" in toy and "robot" not in toy and len(toy) == 6
    np.testing.assert_allclose(toy.get_vector("king", norm=True), np.array([1.0, 0.2]) / math.hypot(1, 0.2), rtol=1e-6)
    assert toy[["man", "woman"]].shape == (2, 2)
    with pytest.raises(KeyError, match="robot"):
        toy.most_similar("robot")
    with pytest.raises(KeyError):
        toy["robot"]
    with pytest.raises(ValueError):
        toy.doesnt_match(["robot"])


def test_evaluations_return_what_gensim_returns(toy, tmp_path):
    q = tmp_path / "q.txt"
    q.write_text(ANALOGIES)
    with pytest.warns(UserWarning, match="skipped 1 malformed line"):
        score, sections = toy.evaluate_word_analogies(q)
    assert score == pytest.approx(2 / 3)
    assert [s["section"] for s in sections] == ["royal", "other", "Total accuracy"]
    assert sections[0]["correct"] == [("MAN", "KING", "WOMAN", "QUEEN")] * 2
    assert sections[0]["incorrect"] == [("MAN", "KING", "WOMAN", "APPLE")]
    assert sections[-1]["correct"] == sections[0]["correct"]
    p = tmp_path / "p.tsv"
    p.write_text(PAIRS)
    pearson, spearman, oov = toy.evaluate_word_pairs(p)
    assert oov == pytest.approx(20.0)
    assert -1 <= pearson.statistic <= 1 and 0 <= pearson.pvalue <= 1
    assert spearman.correlation == spearman.statistic == spearman[0]

    gensim = pytest.importorskip("gensim")
    f = tmp_path / "toy.txt"
    toy.save_word2vec_format(f)
    g = gensim.models.KeyedVectors.load_word2vec_format(str(f))
    with pytest.warns(UserWarning):
        assert toy.evaluate_word_analogies(q) == g.evaluate_word_analogies(str(q))
    gp, gs, goov = g.evaluate_word_pairs(str(p))
    assert (pearson.statistic, pearson.pvalue) == pytest.approx((gp.statistic, gp.pvalue), rel=1e-5)
    assert (spearman.statistic, spearman.pvalue) == pytest.approx((gs.statistic, gs.pvalue), rel=1e-5)
    assert oov == pytest.approx(goov)
    for w in ["man", "queen"]:
        ours = toy.most_similar(w, topn=3)
        theirs = g.most_similar(w, topn=3)
        assert [k for k, _ in ours] == [k for k, _ in theirs]
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-6)


def test_save_and_load_round_trip(toy, tmp_path):
    for binary in (False, True):
        f = tmp_path / f"v{binary}.bin"
        toy.save_word2vec_format(f, binary=binary)
        back = KeyedVectors.load_word2vec_format(f, binary=binary)
        assert back.index_to_key == toy.index_to_key
        np.testing.assert_allclose(back.vectors, toy.vectors, rtol=1e-6)
    assert len(KeyedVectors.load_word2vec_format(f, limit=3)) == 3


def test_glove_trains(corpus_file):
    m = GloVe(corpus_file=corpus_file, vector_size=8, window=5, epochs=3, min_count=1,
              workers=1, progress=False)
    assert m.wv.vectors.shape == (len(m.wv), 8)
    assert len(m.summary["epoch_costs"]) == 3


def test_bad_input_raises_with_the_cli_message(tmp_path, corpus_file):
    with pytest.raises(FileNotFoundError):
        Word2Vec(corpus_file=tmp_path / "missing.txt", progress=False)
    with pytest.raises(firth.FirthError, match="lower --min-count"):
        Word2Vec(corpus_file=corpus_file, min_count=10**9, progress=False)
    with pytest.raises(firth.FirthError):
        Word2Vec(corpus_file=corpus_file, vector_size=0, progress=False)
    with pytest.raises(TypeError):
        Word2Vec(progress=False)
    with pytest.raises(ValueError, match="whitespace"):
        Word2Vec(sentences=[["a b", "c"]], progress=False)
    with pytest.raises(TypeError):
        Word2Vec(corpus_file=corpus_file, min_alpha=0.001)  # not a firth setting: refused
