#!/usr/bin/env python3
"""firth from Python against the modules it stands in for, on public data:

1. n-gram scores: ``firth.ngram.Model`` and the ``kenlm`` module load the same ARPA file
   (built by firth on the PTB training text) and score every PTB test sentence, with and
   without <s> and </s>; prints the largest difference in log10 and the perplexities.
2. evaluation: one vector file loaded by ``firth.vectors.KeyedVectors`` and by gensim's
   ``KeyedVectors``; ``evaluate_word_analogies`` (questions-words, restrict_vocab 30000) and
   ``evaluate_word_pairs`` (WordSim353 and SimLex-999 as gensim's test data ships them) must
   return the same values; also ``most_similar`` on a few words.

Usage (from the repository root, with firth, kenlm and gensim installed):
  python bench/python/parity.py [--data ../shared/data] [--vectors FILE] [--order 5]
Without --vectors it trains skip-gram vectors on the first 10 MB of gut8 with firth.
"""
import argparse
import math
import os
import sys
import tempfile
import time

import firth.ngram
import firth.vectors


def ngram_parity(data, order, tmp):
    import kenlm

    # PTB writes rare words as <unk>, a reserved word for both tools; as bench/ngram does, it
    # becomes an ordinary word, _unk_, in both files.
    def renamed(name):
        out = os.path.join(tmp, name)
        with open(os.path.join(data, "ptb", name), encoding="utf-8") as f, open(out, "w") as g:
            g.write(f.read().replace("<unk>", "_unk_"))
        return out

    train, test = renamed("ptb.train.txt"), renamed("ptb.test.txt")
    arpa = os.path.join(tmp, f"ptb.o{order}.arpa")
    firth.ngram.build(train, order, arpa=arpa, progress=False)
    ours, theirs = firth.ngram.Model(arpa), kenlm.Model(arpa)
    lines = open(test, encoding="utf-8").read().splitlines()
    worst, n = 0.0, 0
    tot_ours = tot_theirs = 0.0
    tokens = 0
    for line in lines:
        for bos in (True, False):
            for eos in (True, False):
                a, b = ours.score(line, bos=bos, eos=eos), theirs.score(line, bos=bos, eos=eos)
                worst = max(worst, abs(a - b))
                n += 1
        tot_ours += ours.score(line)
        tot_theirs += theirs.score(line)
        tokens += len(line.split()) + 1
        for (pa, la, oa), (pb, lb, ob) in zip(ours.full_scores(line), theirs.full_scores(line)):
            worst = max(worst, abs(pa - pb))
            if (la, oa) != (lb, ob):
                sys.exit(f"full_scores differ on {line!r}: {(la, oa)} vs {(lb, ob)}")
    print(f"ngram: order {order} ARPA from ptb.train.txt; {len(lines)} ptb.test.txt sentences, "
          f"{n} score() calls (bos/eos on and off) plus full_scores per word")
    print(f"  max |firth - kenlm| log10: {worst:.3g}")
    print(f"  test perplexity (incl. </s>): firth {10 ** (-tot_ours / tokens):.4f}, "
          f"kenlm {10 ** (-tot_theirs / tokens):.4f}")
    assert worst <= 1e-4, worst
    return worst


def vectors_parity(data, vectors):
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    ours = firth.vectors.KeyedVectors.load_word2vec_format(vectors)
    theirs = KeyedVectors.load_word2vec_format(vectors, binary=True)
    questions = os.path.join(data, "wordvec-eval", "questions-words.txt")
    t = time.time()
    a = ours.evaluate_word_analogies(questions, restrict_vocab=30000)
    t_ours = time.time() - t
    t = time.time()
    b = theirs.evaluate_word_analogies(questions, restrict_vocab=30000)
    t_theirs = time.time() - t
    same = a == b
    print(f"analogies: questions-words, restrict_vocab 30000: firth {a[0]:.6f} "
          f"({t_ours:.1f} s), gensim {b[0]:.6f} ({t_theirs:.1f} s); "
          f"sections and question lists identical: {same}")
    if not same:
        for sa, sb in zip(a[1], b[1]):
            if sa != sb:
                print("  first differing section:", sa["section"],
                      len(sa["correct"]), len(sb["correct"]))
                break
    ok = same
    for name in ("wordsim353.tsv", "simlex999.txt"):
        pa, sa, oa = ours.evaluate_word_pairs(datapath(name))
        pb, sb, ob = theirs.evaluate_word_pairs(datapath(name))
        diffs = [abs(pa.statistic - pb.statistic), abs(pa.pvalue - pb.pvalue),
                 abs(sa.statistic - sb.statistic), abs(sa.pvalue - sb.pvalue), abs(oa - ob)]
        print(f"pairs {name}: pearson {pa.statistic:.10f} / {pb.statistic:.10f} "
              f"(p {pa.pvalue:.6g} / {pb.pvalue:.6g}), spearman {sa.statistic:.10f} / "
              f"{sb.statistic:.10f} (p {sa.pvalue:.6g} / {sb.pvalue:.6g}), oov {oa:.4f}% / "
              f"{ob:.4f}%; max difference {max(diffs):.2g}")
        # Cosines are float32 sums in both (BLAS's order in gensim, firth's own): they agree to
        # about 1e-7, which can swap the ranks of two near-tied pairs and move Spearman's rho
        # in the sixth decimal on weak vectors; everything else agrees to 1e-6.
        ok = ok and max(diffs[:2] + diffs[4:]) < 1e-6 and max(diffs[2:4]) < 1e-5
    for w in ("king", "france", "good"):
        if w in ours:
            x = ours.most_similar(w, topn=5)
            y = theirs.most_similar(w, topn=5)
            same_words = [k for k, _ in x] == [k for k, _ in y]
            d = max(abs(s - t) for (_, s), (_, t) in zip(x, y))
            print(f"most_similar({w!r}): same words {same_words}, max score difference {d:.2g}")
            ok = ok and same_words
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--vectors", help="word2vec binary file (default: train one)")
    ap.add_argument("--order", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ngram_parity(a.data, a.order, tmp)
        vectors = a.vectors
        if vectors is None:
            gut8 = os.path.join(a.data, "gutenberg-en-text8style", "gut8")
            prefix = os.path.join(tmp, "gut8.10M")
            with open(gut8, "rb") as f, open(prefix, "wb") as g:
                g.write(f.read(10_000_000))
            m = firth.vectors.Word2Vec(corpus_file=prefix, vector_size=100, window=5,
                                       min_count=5, sg=1, negative=5, sample=1e-4, epochs=3,
                                       workers=2, progress=False)
            vectors = os.path.join(tmp, "sg.bin")
            m.wv.save_word2vec_format(vectors, binary=True)
        ok = vectors_parity(a.data, vectors)
    print("PARITY OK" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
