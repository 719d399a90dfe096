import math

import pytest

import firth
from firth import ngram


def test_model_loads_arpa_and_scores_like_query(toy_arpa, toy_text):
    m = ngram.Model(toy_arpa)
    assert m.order == 3
    assert m.path == str(toy_arpa)
    line = toy_text.read_text().splitlines()[0]
    scores = list(m.full_scores(line))
    assert len(scores) == len(line.split()) + 1  # the words and </s>
    assert all(isinstance(p, float) and n >= 1 and oov in (True, False) for p, n, oov in scores)
    total = m.score(line)
    assert total == pytest.approx(sum(p for p, _, _ in scores), abs=1e-4)
    assert m.perplexity(line) == pytest.approx(10 ** (-total / len(scores)), rel=1e-6)
    # Without </s> there is one score less; without <s> the first word is a unigram.
    assert len(list(m.full_scores(line, eos=False))) == len(line.split())
    first = next(iter(m.full_scores(line, bos=False, eos=False)))
    assert first[1] == 1


def test_oov_words_and_contains(toy_arpa, toy_text):
    m = ngram.Model(toy_arpa)
    word = toy_text.read_text().split()[0]
    assert word in m
    assert "zzz-not-a-word" not in m
    assert "<unk>" not in m
    (_, _, oov), (_, _, eos_oov) = list(m.full_scores("zzz-not-a-word"))
    assert oov and not eos_oov


def test_build_writes_models_that_load_and_agree(tmp_path, toy_text):
    arpa, binary = tmp_path / "m.arpa", tmp_path / "m.bin"
    s = ngram.build(toy_text, 3, arpa=arpa, binary=binary, progress=False)
    assert s["order"] == 3 and s["sentences"] > 0 and len(s["counts"]) == 3
    assert s["binary_bytes"] == binary.stat().st_size
    a, b = ngram.Model(arpa), ngram.LanguageModel(binary)
    for line in toy_text.read_text().splitlines()[:20]:
        assert a.score(line) == pytest.approx(b.score(line), abs=1e-5)
    stats = b.perplexity_file(toy_text)
    assert stats["tokens"] > 0 and math.isfinite(stats["perplexity"])
    # The model equals KenLM's lmplz on the same text (the fixture was written by lmplz).
    kenlm_built = ngram.Model(toy_text.parent / "toy.kenlm.o3.arpa")
    for line in toy_text.read_text().splitlines()[:20]:
        assert a.score(line) == pytest.approx(kenlm_built.score(line), abs=1e-4)
    assert len(b.generate(3, seed=2)) == 3


def test_errors_are_python_exceptions_with_the_cli_messages(tmp_path, toy_text):
    with pytest.raises(FileNotFoundError, match="cannot read"):
        ngram.Model(tmp_path / "missing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("this is not an ARPA file\n")
    with pytest.raises(firth.FirthError):
        ngram.Model(bad)
    with pytest.raises(firth.FirthError, match="give an output"):
        ngram.build(toy_text, 3, progress=False)
    with pytest.raises(firth.FirthError):
        ngram.build(toy_text, 3, arpa=tmp_path / "x.arpa", smoothing="nope", progress=False)
    # A damaged binary model is refused, not scored.
    binary = tmp_path / "m.bin"
    ngram.build(toy_text, 2, binary=binary, progress=False)
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    with pytest.raises(firth.FirthError, match="damaged|checksum"):
        ngram.Model(binary)


def test_scores_equal_the_kenlm_module_when_it_is_installed(toy_arpa, toy_text):
    kenlm = pytest.importorskip("kenlm")
    ours, theirs = ngram.Model(toy_arpa), kenlm.Model(str(toy_arpa))
    lines = toy_text.read_text().splitlines()[:200] + ["zzz unknown words here", ""]
    for line in lines:
        for bos in (True, False):
            for eos in (True, False):
                assert ours.score(line, bos=bos, eos=eos) == pytest.approx(
                    theirs.score(line, bos=bos, eos=eos), abs=1e-4
                )
        a, b = list(ours.full_scores(line)), list(theirs.full_scores(line))
        assert [(n, o) for _, n, o in a] == [(n, o) for _, n, o in b]
        assert [p for p, _, _ in a] == pytest.approx([p for p, _, _ in b], abs=1e-5)
        assert ours.perplexity(line) == pytest.approx(theirs.perplexity(line), rel=1e-4)
    assert ours.order == theirs.order


def test_tries_load_and_score_like_the_arpa_file(tmp_path, toy_arpa, toy_text):
    trie, quantized, back = tmp_path / "m.trie", tmp_path / "q.trie", tmp_path / "back.arpa"
    assert ngram.convert(toy_arpa, trie, "trie") == trie.stat().st_size
    ngram.convert(toy_arpa, quantized, "trie", q=8, b=8)
    assert quantized.stat().st_size < trie.stat().st_size
    a, t, qt = ngram.Model(toy_arpa), ngram.Model(trie), ngram.Model(quantized)
    assert t.order == a.order and t.vocab_size == a.vocab_size
    for line in toy_text.read_text().splitlines()[:50]:
        # The unquantized trie holds the ARPA file's values: the same float32 sums.
        assert t.score(line) == a.score(line)
        assert abs(qt.score(line) - a.score(line)) < 0.05 * (len(line.split()) + 1)
    # A trie gives its ARPA file back.
    ngram.convert(trie, back, "arpa")
    assert back.read_bytes() == toy_arpa.read_bytes()
    with pytest.raises(firth.FirthError, match="trie layout only"):
        ngram.convert(toy_arpa, tmp_path / "x", "probing", q=8)
