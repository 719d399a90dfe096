"""The recurrent models: train with the command line's options, load, predict."""

import json
import random

import numpy as np
import pytest

import firth
import firth.classify
import firth.lm
import firth.tag


@pytest.fixture(scope="module")
def lm_text(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    rng = random.Random(1)
    lines = [" ".join(rng.choice(["the cat sat", "a dog ran", "the dog sat"]) for _ in range(3))
             for _ in range(300)]
    (d / "train.txt").write_text("\n".join(lines[:250]) + "\n")
    (d / "valid.txt").write_text("\n".join(lines[250:]) + "\n")
    return d


def test_lm_trains_loads_scores_and_generates(lm_text, tmp_path):
    out = tmp_path / "run"
    m = firth.lm.train(lm_text / "train.txt", valid=lm_text / "valid.txt", out=out,
                       arch="lstm", layers=1, hidden=16, bptt=10, batch=4, optim="adam",
                       lr=1e-2, epochs=2, seed=3, progress=False)
    assert m.summary["epochs_completed"] == 2
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 2
    # The words repeat a tiny grammar: far better than uniform over the vocabulary.
    ppl = m.perplexity("the cat sat a dog ran\nthe dog sat\n")
    assert 1 < ppl < m.vocab_size
    loaded = firth.lm.load(out)
    assert loaded.summary is None
    assert loaded.perplexity(["the cat sat a dog ran", "the dog sat"]) == pytest.approx(ppl)
    s = loaded.generate("the cat", max_tokens=5, greedy=True)
    assert s.startswith("the cat") and s == loaded.generate("the cat", max_tokens=5, greedy=True)
    assert loaded.config["hidden"] == 16


def test_lm_options_are_checked(lm_text, tmp_path):
    with pytest.raises(TypeError, match="unknown option"):
        firth.lm.train(lm_text / "train.txt", out=tmp_path / "x", hiden=16, progress=False)
    with pytest.raises(firth.FirthError, match="choose one of"):
        firth.lm.train(lm_text / "train.txt", out=tmp_path / "x", arch="transformer",
                       progress=False)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        firth.lm.load(tmp_path / "nothing-here")


def test_lm_max_steps_stops_early_and_resume_goes_on(lm_text, tmp_path):
    out = tmp_path / "run"
    kw = dict(valid=lm_text / "valid.txt", out=out, layers=1, hidden=8, bptt=10, batch=4,
              epochs=2, progress=False)
    m = firth.lm.train(lm_text / "train.txt", max_steps=3, **kw)
    assert m.summary["stopped_early"]
    m = firth.lm.train(lm_text / "train.txt", resume=True, **kw)
    assert m.summary["epochs_completed"] == 2


def test_classifier_trains_and_predicts(tmp_path):
    rng = random.Random(2)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    def line():
        pos = rng.random() < 0.5
        words = [rng.choice(good if pos else bad) for _ in range(3)] + ["film"]
        return ("positive" if pos else "negative") + "\t" + " ".join(words)
    (tmp_path / "train.tsv").write_text("\n".join(line() for _ in range(400)) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(line() for _ in range(60)) + "\n")
    clf = firth.classify.train(tmp_path / "train.tsv", dev=tmp_path / "dev.tsv",
                               out=tmp_path / "run", hidden=16, emb=16, epochs=4, lr=0.01,
                               seed=1, progress=False)
    assert sorted(clf.labels) == ["negative", "positive"]
    assert clf.summary["dev_accuracy"] > 90
    pred = clf.predict(["good great nice film", ["awful", "dull", "bad", "film"]])
    assert pred == ["positive", "negative"]
    p = firth.classify.load(tmp_path / "run").predict_proba(["good great nice film"])
    assert p.shape == (1, 2) and p.dtype == np.float32
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    assert clf.labels[int(p.argmax())] == "positive"


def test_tagger_trains_and_predicts(tmp_path):
    rng = random.Random(3)
    names, verbs = ["anna", "bob", "carl", "dora"], ["runs", "sings", "eats", "sleeps"]
    def sentence():
        return f"{rng.choice(names)} NOUN\n{rng.choice(verbs)} VERB\n. PUNCT\n"
    (tmp_path / "train.conll").write_text("\n".join(sentence() for _ in range(200)))
    (tmp_path / "dev.conll").write_text("\n".join(sentence() for _ in range(30)))
    t = firth.tag.train(tmp_path / "train.conll", dev=tmp_path / "dev.conll",
                        out=tmp_path / "run", hidden=16, emb=16, char_dim=0, epochs=5, optim="adam", lr=0.01,
                        crf=False, progress=False)
    assert set(t.tags) >= {"NOUN", "VERB", "PUNCT"}
    assert t.predict([["anna", "sings", "."], "bob eats ."]) == [["NOUN", "VERB", "PUNCT"]] * 2
    assert firth.tag.load(tmp_path / "run").predict(["dora sleeps ."]) == [["NOUN", "VERB", "PUNCT"]]
