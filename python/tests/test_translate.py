"""firth.translate: train on the repository's toy German-English corpus, translate, score,
attention; BLEU and chrF against sacrebleu's values for the firth-eval fixtures."""

import json

import numpy as np
import pytest

import firth
import firth.translate
from conftest import BLEU_FIXTURES, TRANSLATE_FIXTURES as FIX, ctrl_c_after


def _lines(path):
    # As sacrebleu's command line reads a file: UTF-8, split at "\n" only.
    text = path.read_bytes().decode("utf-8")
    if text == "":
        return []
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tr") / "run"
    # The command-line test's recipe (crates/firth-cli/tests/translate.rs).
    tr = firth.translate.train(
        FIX / "train.de", FIX / "train.en", out=out,
        valid_src=FIX / "valid.de", valid_tgt=FIX / "valid.en",
        test_src=FIX / "valid.de", test_tgt=FIX / "valid.en",
        emb=16, hidden=16, lr=0.02, warmup_steps=0, plateau_decay=1, batch_tokens=60,
        dropout=0, min_count=1, epochs=40, beam=3, progress=False)
    return tr, out


def test_translator_trains_and_its_summary_is_the_command_line_s(trained):
    tr, out = trained
    s = tr.summary
    assert s["epochs_completed"] == 40 and s["test_beam"] == 3
    assert s["test_bleu"] > 60
    assert json.loads((out / "summary.json").read_text())["test_bleu"] == s["test_bleu"]
    # test.hyp holds the beam-3 translations of the test sources.
    src, refs = _lines(FIX / "valid.de"), _lines(FIX / "valid.en")
    hyps = tr.translate(src, beam=3)
    assert hyps == _lines(out / "test.hyp")
    # The greedy BLEU the run reported, from evaluate and from corpus_bleu on translate's
    # output (already tokenised text: tokenize="none", as the pipeline scores it).
    greedy = tr.evaluate(src, refs)
    assert greedy["sentences"] == len(src) and greedy["beam"] == 1
    assert greedy["bleu"] == pytest.approx(s["test_bleu_greedy"], abs=1e-9)
    bleu = firth.translate.corpus_bleu(tr.translate(src), [refs], tokenize="none")
    assert bleu.score == pytest.approx(s["test_bleu_greedy"], abs=1e-9)
    assert tr.evaluate(src, refs, beam=3)["bleu"] == pytest.approx(s["test_bleu"], abs=1e-9)
    assert tr.evaluate(src, refs, beam=3)["chrf"] == pytest.approx(s["test_chrf"], abs=1e-9)


def test_a_loaded_translator_translates_as_the_trained_one(trained):
    tr, out = trained
    loaded = firth.translate.load(out)
    assert loaded.summary is None
    sents = ["der mann läuft .", ["ein", "kind", "isst", "."], ""]
    got = loaded.translate(sents)
    assert got == tr.translate(sents)
    assert got[2] == "" and got[0] != ""
    assert loaded.config["enc_hidden"] == 16
    # The n-best lists: n per sentence, best first, the first the beam's one-best.
    nb = loaded.translate_n_best(sents[:2], n=3, beam=3)
    assert [len(x) for x in nb] == [3, 3]
    for hyps, best in zip(nb, loaded.translate(sents[:2], beam=3)):
        assert hyps[0][0] == best
        scores = [score for _, score in hyps]
        assert scores == sorted(scores, reverse=True)


def test_attention_is_a_target_by_source_array_of_the_translation(trained):
    tr, _ = trained
    sentence = "der kind läuft schnell ."
    for beam in (1, 3):
        a = tr.attention(sentence, beam=beam)
        assert isinstance(a, firth.translate.Attention)
        assert a.translation == tr.translate([sentence], beam=beam)[0]
        assert a.source == sentence.split()
        assert a.target[-1] == "</s>" and " ".join(a.target[:-1]) == a.translation
        assert a.weights.dtype == np.float32
        assert a.weights.shape == (len(a.target), len(a.source))
        np.testing.assert_allclose(a.weights.sum(axis=1), 1.0, atol=1e-5)
        assert (a.weights >= 0).all()
    # The state_dict holds the weights by firth's names.
    sd = tr.state_dict()
    assert sd["out.weight"].shape[0] == tr.summary["tgt_vocab"]


def test_translate_refuses_bad_options_and_input(trained, tmp_path):
    tr, _ = trained
    with pytest.raises(TypeError, match="unknown option"):
        firth.translate.train(FIX / "train.de", FIX / "train.en", out=tmp_path / "x",
                              hiden=8, progress=False)
    with pytest.raises(firth.FirthError, match="choose one of"):
        firth.translate.train(FIX / "train.de", FIX / "train.en", out=tmp_path / "x",
                              attention="luong", progress=False)
    with pytest.raises(FileNotFoundError):
        firth.translate.train(tmp_path / "none.de", FIX / "train.en", out=tmp_path / "x",
                              progress=False)
    with pytest.raises(TypeError, match="not one str"):
        tr.translate("der mann läuft .")
    with pytest.raises(firth.FirthError, match="beam"):
        tr.translate(["der mann"], beam=0)
    with pytest.raises(firth.FirthError, match="empty"):
        tr.attention("")
    with pytest.raises(firth.FirthError, match="references"):
        tr.evaluate(["a"], ["a", "b"])


def test_bleu_and_chrf_equal_sacrebleu_on_the_fixtures():
    exp = json.loads((BLEU_FIXTURES / "expected.json").read_text(encoding="utf-8"))
    checked = 0
    for case in exp["cases"]:
        hyps = _lines(BLEU_FIXTURES / case["hyp"])
        refs = [_lines(BLEU_FIXTURES / r) for r in case["refs"]]
        for e in case["bleu"]:
            b = firth.translate.corpus_bleu(hyps, refs, tokenize=e["tokenize"],
                                            lowercase=e["lowercase"], smooth_method=e["smooth"])
            what = (case["name"], e["tokenize"], e["lowercase"], e["smooth"])
            assert b.score == pytest.approx(e["score"], abs=1e-9), what
            assert list(b.counts) == e["counts"] and list(b.totals) == e["totals"], what
            assert (b.sys_len, b.ref_len) == (e["hyp_len"], e["ref_len"]), what
            assert b.bp == pytest.approx(e["bp"], abs=1e-12), what
            assert list(b.precisions) == pytest.approx(e["precisions"], abs=1e-9), what
            checked += 1
        for e in case["chrf"]:
            c = firth.translate.corpus_chrf(hyps, refs, lowercase=e["lowercase"])
            assert c.score == pytest.approx(e["score"], abs=1e-9), case["name"]
        for e in case["chrf_pp"]:
            c = firth.translate.corpus_chrf(hyps, refs, word_order=2, lowercase=e["lowercase"])
            assert c.score == pytest.approx(e["score"], abs=1e-9) and c.name == "chrF2++"
    assert checked == 48
    main = firth.translate.corpus_bleu(_lines(BLEU_FIXTURES / "hyp.txt"),
                                       [_lines(BLEU_FIXTURES / "ref.txt")])
    # sacrebleu's text line (crates/firth-eval/tests/fixtures/bleu/README.md).
    assert str(main) == ("BLEU = 61.84 77.5/64.8/57.0/51.1 (BP = 1.000 ratio = 1.030 "
                         "hyp_len = 138 ref_len = 134)")
    with pytest.raises(TypeError, match=r"\[refs\]"):
        firth.translate.corpus_bleu(["a b"], ["a b"])
    with pytest.raises(firth.FirthError, match="references"):
        firth.translate.corpus_bleu(["a b", "c"], [["a b"]])


def test_sacrebleu_itself_agrees_when_installed():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = _lines(BLEU_FIXTURES / "hyp.txt")
    refs = [_lines(BLEU_FIXTURES / "ref.txt"), _lines(BLEU_FIXTURES / "ref2.txt")]
    assert firth.translate.corpus_bleu(hyps, refs).score == pytest.approx(
        sacrebleu.corpus_bleu(hyps, refs).score, abs=1e-9)
    assert firth.translate.corpus_chrf(hyps, refs).score == pytest.approx(
        sacrebleu.corpus_chrf(hyps, refs).score, abs=1e-9)


def test_ctrl_c_stops_translate_training_and_resume_goes_on(tmp_path):
    import time

    out = tmp_path / "run"
    kw = dict(out=out, emb=8, hidden=8, min_count=1, batch_tokens=60, no_valid_bleu=True,
              progress=False)
    start = time.perf_counter()
    with ctrl_c_after(0.5), pytest.raises(KeyboardInterrupt):
        firth.translate.train(FIX / "train.de", FIX / "train.en", epochs=100_000, **kw)
    assert time.perf_counter() - start < 10
    # The checkpoint was saved as at max_steps: resume goes on from it.
    assert (out / "checkpoint.safetensors").exists()
    tr = firth.translate.train(FIX / "train.de", FIX / "train.en", epochs=1, resume=True, **kw)
    assert tr.summary["epochs_completed"] >= 1
