"""The recurrent models: train with the command line's options, load, predict."""

import json
import random

import numpy as np
import pytest

import firth
import firth.classify
import firth.lm
import firth.tag
from conftest import ctrl_c_after


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


def test_classifier_with_character_lm_features(lm_text, tmp_path):
    """``char_lm=(fwd, bwd)``: two tiny character LMs feed the classifier; the model
    directory keeps copies of both, so it loads and predicts the same after the originals are
    gone; a swapped pair is refused, naming what to do."""
    import shutil

    lms = {}
    for name, reverse in [("fwd", False), ("bwd", True)]:
        lms[name] = tmp_path / name
        firth.lm.train(lm_text / "train.txt", valid=lm_text / "valid.txt", out=lms[name],
                       level="char", reverse=reverse, layers=1, hidden=6, emb=4, bptt=8,
                       batch=4, epochs=1, seed=1, progress=False)
    rng = random.Random(4)
    def line():
        pos = rng.random() < 0.5
        words = ["the", "cat" if pos else "dog", "sat" if pos else "ran"]
        return ("positive" if pos else "negative") + "\t" + " ".join(words)
    (tmp_path / "train.tsv").write_text("\n".join(line() for _ in range(200)) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(line() for _ in range(40)) + "\n")
    kw = dict(dev=tmp_path / "dev.tsv", hidden=8, emb=8, epochs=2, lr=0.01, seed=1,
              progress=False)
    clf = firth.classify.train(tmp_path / "train.tsv", out=tmp_path / "run",
                               char_lm=(lms["fwd"], lms["bwd"]), **kw)
    for d in ["char-lm-fwd", "char-lm-bwd"]:
        assert (tmp_path / "run" / d / "model.safetensors").exists()
    sents = ["the cat sat", ["the", "dog", "ran"]]
    p = clf.predict_proba(sents)
    v = clf.sentence_vectors(sents)
    with pytest.raises(firth.FirthError, match="swap the two"):
        firth.classify.train(tmp_path / "train.tsv", out=tmp_path / "bad",
                             char_lm=(lms["bwd"], lms["fwd"]), **kw)
    shutil.rmtree(lms["fwd"])
    shutil.rmtree(lms["bwd"])
    loaded = firth.classify.load(tmp_path / "run")
    assert np.array_equal(loaded.predict_proba(sents), p)
    assert np.array_equal(loaded.sentence_vectors(sents), v)


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


def test_tagger_document_vote_is_kept_with_the_model_and_refused_on_pos_tags(tmp_path):
    rng = random.Random(5)
    people, places = ["anna", "bob"], ["paris", "rome"]
    def sentence():
        return f"{rng.choice(people)} B-PER\nvisits O\n{rng.choice(places)} B-LOC\n"
    (tmp_path / "train.conll").write_text(
        "".join("-DOCSTART- O\n\n" + "\n".join(sentence() for _ in range(5)) + "\n" for _ in range(20)))
    t = firth.tag.train(tmp_path / "train.conll", out=tmp_path / "run", hidden=8, emb=8, char_dim=0,
                        epochs=10, lr=0.01, document_vote=True, progress=False)
    assert t.predict(["anna visits rome"]) == [["B-PER", "O", "B-LOC"]]
    (tmp_path / "pos.conll").write_text("anna NOUN\nvisits VERB\n")
    with pytest.raises(firth.FirthError, match="--document-vote"):
        firth.tag.train(tmp_path / "pos.conll", out=tmp_path / "pos", document_vote=True, progress=False)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def test_lm_hidden_states_are_what_the_output_layer_reads(lm_text, tmp_path):
    m = firth.lm.train(lm_text / "train.txt", valid=lm_text / "valid.txt", out=tmp_path / "run",
                       arch="lstm", layers=2, hidden=12, emb=8, bptt=10, batch=4, optim="adam",
                       lr=1e-2, epochs=1, seed=3, progress=False)
    text = "the cat sat a dog ran\nthe dog sat\n"
    tokens = m.tokenize(text)
    assert tokens == ["the", "cat", "sat", "a", "dog", "ran", "<eos>", "the", "dog", "sat",
                      "<eos>"]
    top = m.hidden_states(text)
    every = m.hidden_states(text, layer=None)
    assert top.dtype == np.float32 and top.shape == (len(tokens), 12)
    assert every.shape == (2, len(tokens), 12)
    np.testing.assert_array_equal(every[1], top)
    np.testing.assert_array_equal(every[0], m.hidden_states(text, layer=0))
    # The output layer on row t predicts token t + 1: the mean -log p of the text's tokens
    # is the loss (and perplexity) that score() reports.
    sd = m.state_dict()
    logits = top.astype(np.float64) @ sd["out.weight"].T.astype(np.float64) + sd["out.bias"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ids = [m.vocab.index(t) for t in tokens]
    nll = -np.mean([logp[t, ids[t + 1]] for t in range(len(ids) - 1)])
    assert nll == pytest.approx(m.score(text)["loss"], abs=1e-5)
    assert np.exp(nll) == pytest.approx(m.perplexity(text), rel=1e-5)
    with pytest.raises(IndexError, match="2 layer"):
        m.hidden_states(text, layer=2)


def test_classifier_sentence_vectors_give_predict_proba(tmp_path):
    rng = random.Random(4)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    def line():
        pos = rng.random() < 0.5
        return ("positive" if pos else "negative") + "\t" + " ".join(
            [rng.choice(good if pos else bad) for _ in range(3)] + ["film"])
    (tmp_path / "train.tsv").write_text("\n".join(line() for _ in range(200)) + "\n")
    clf = firth.classify.train(tmp_path / "train.tsv", out=tmp_path / "run", hidden=8, emb=8,
                               epochs=2, lr=0.01, pooling="attention", seed=1, progress=False)
    sents = ["good great nice film", ["awful", "dull", "bad", "film"], "unseen words here"]
    v = clf.sentence_vectors(sents)
    assert v.dtype == np.float32 and v.shape == (3, 16)      # bidirectional: 2 x hidden
    sd = clf.state_dict()
    assert sd["out.weight"].shape == (2, 16) and sd["out.bias"].shape == (2,)
    p = _softmax(v.astype(np.float64) @ sd["out.weight"].T + sd["out.bias"])
    np.testing.assert_allclose(p, clf.predict_proba(sents), atol=1e-6)
    # A sentence's vector does not depend on the others in the call.
    np.testing.assert_allclose(clf.sentence_vectors(sents[1:2])[0], v[1], atol=1e-6)
    assert clf.sentence_vectors([]).shape == (0, 16)


def test_classifier_folds_return_the_cross_validation(tmp_path):
    rng = random.Random(5)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    def line():
        pos = rng.random() < 0.5
        return ("positive" if pos else "negative") + "\t" + " ".join(
            [rng.choice(good if pos else bad) for _ in range(3)] + ["film"])
    (tmp_path / "all.tsv").write_text("\n".join(line() for _ in range(90)) + "\n")
    cv = firth.classify.train(tmp_path / "all.tsv", out=tmp_path / "cv", folds=3, hidden=8,
                              emb=8, epochs=3, lr=0.01, seed=1, progress=False)
    assert isinstance(cv, dict)
    assert cv["folds"] == 3 and cv["examples"] == 90
    acc = cv["fold_accuracy"]
    assert len(acc) == 3 and len(cv["fold_best_epoch"]) == 3
    assert cv["mean_accuracy"] == pytest.approx(np.mean(acc))
    assert cv["std_accuracy"] == pytest.approx(np.std(acc, ddof=1))
    assert json.loads((tmp_path / "cv" / "cv.json").read_text())["fold_accuracy"] == acc
    # Each fold's model scores its 30 held-out sentences: accuracies are multiples of 1/30.
    for k, a in enumerate(acc, 1):
        assert (tmp_path / "cv" / f"fold-{k}" / "model.safetensors").exists()
        assert round(a * 30 / 100, 6) == round(a * 30 / 100)
    # Ctrl-C during a fold: KeyboardInterrupt, and no cv.json with half-trained folds in it.
    with ctrl_c_after(0.5), pytest.raises(KeyboardInterrupt):
        firth.classify.train(tmp_path / "all.tsv", out=tmp_path / "stopped", folds=3,
                             hidden=8, emb=8, epochs=100_000, patience=0, progress=False)
    assert not (tmp_path / "stopped" / "cv.json").exists()
    assert not (tmp_path / "stopped" / "fold-2").exists()
    with pytest.raises(firth.FirthError, match="leave out --test"):
        firth.classify.train(tmp_path / "all.tsv", out=tmp_path / "x", folds=3,
                             test=tmp_path / "all.tsv", progress=False)
    with pytest.raises(firth.FirthError, match="resume"):
        firth.classify.train(tmp_path / "all.tsv", out=tmp_path / "x", folds=3, resume=True,
                             progress=False)


def test_tagger_hidden_states_give_the_predicted_tags(tmp_path):
    rng = random.Random(6)
    names, verbs = ["anna", "bob", "carl", "dora"], ["runs", "sings", "eats", "sleeps"]
    def sentence():
        return f"{rng.choice(names)} NOUN\n{rng.choice(verbs)} VERB\n. PUNCT\n"
    (tmp_path / "train.conll").write_text("\n".join(sentence() for _ in range(60)))
    t = firth.tag.train(tmp_path / "train.conll", out=tmp_path / "run", hidden=6, emb=8,
                        char_dim=4, char_hidden=3, epochs=1, optim="adam", lr=0.01, crf=False,
                        progress=False)
    for sent in (["anna", "sings", "."], "bob eats quickly ."):
        h = t.hidden_states(sent)
        n = len(sent) if isinstance(sent, list) else len(sent.split())
        assert h.dtype == np.float32 and h.shape == (n, 12)     # forward | backward
        sd = t.state_dict()
        scores = h.astype(np.float64) @ sd["out.weight"].T + sd["out.bias"]
        assert [t.tags[i] for i in scores.argmax(axis=1)] == t.predict([sent])[0]
    with pytest.raises(firth.FirthError, match="empty"):
        t.hidden_states("")
    with pytest.raises(TypeError, match="one sentence"):
        t.hidden_states([["a", "b"]])
