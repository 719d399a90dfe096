#!/usr/bin/env python3
"""firth.vectors.Word2Vec against gensim.models.Word2Vec: same corpus file, same settings,
``workers=2``, one after the other in one process.

words/s = corpus words in the vocabulary x epochs / wall seconds of the constructor (counting
the vocabulary and training, as a user waits for it), the same word count for both (the two
vocabularies are the same: min_count over the same whitespace tokens). Analogy accuracy is
gensim's ``evaluate_word_analogies`` (questions-words, restrict_vocab 30000) on each model's
vectors. Also checks that ``wv.vectors`` is firth's own buffer.

gut8, like text8, is one line of 17 million words. gensim's corpus_file mode reads a file line
by line and does not train properly on such a line (the run ends in a minute with vectors at
0.01% analogy accuracy), so both tools get a copy cut into lines of ``--line-words`` words
(1000: word2vec C's and firth's longest sentence; gensim's is 10000).

Usage: python bench/python/speed.py [--corpus ../shared/data/gutenberg-en-text8style/gut8]
       [--mb 0 (all)] [--line-words 1000] [--epochs 5] [--sg 1] [--runs firth,gensim]
"""
import argparse
import logging
import os
import tempfile
import time


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--mb", type=float, default=0, help="use only the first MB of the corpus")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sg", type=int, default=1)
    ap.add_argument("--runs", default="firth,gensim")
    ap.add_argument("--line-words", type=int, default=1000)
    a = ap.parse_args()
    corpus = a.corpus or os.path.join(a.data, "gutenberg-en-text8style", "gut8")
    questions = os.path.join(a.data, "wordvec-eval", "questions-words.txt")
    tmp = tempfile.mkdtemp()
    with open(corpus, "rb") as f:
        text = f.read(int(a.mb * 1e6)) if a.mb else f.read()
    if a.mb:
        text = text[: text.rfind(b" ")]  # no word cut in half
    words = text.split()
    del text
    lines = os.path.join(tmp, "corpus.txt")
    with open(lines, "wb") as g:
        for i in range(0, len(words), a.line_words):
            g.write(b" ".join(words[i : i + a.line_words]) + b"\n")
    del words
    corpus = lines
    settings = dict(vector_size=100, window=5, min_count=5, sg=a.sg, hs=0, negative=5,
                    sample=1e-4, alpha=0.025, epochs=a.epochs, workers=2, seed=1)
    print(f"corpus {corpus} ({os.path.getsize(corpus) / 1e6:.0f} MB), settings {settings}")
    from gensim.models import KeyedVectors as GensimKV

    results = {}
    words = None
    for run in a.runs.split(","):
        print(f"[{run}] start {time.strftime('%H:%M:%S')} load average {load()}", flush=True)
        t = time.perf_counter()
        cpu = time.process_time()  # all threads of this process: steadier on a shared machine
        if run == "firth":
            import numpy as np
            import firth.vectors

            m = firth.vectors.Word2Vec(corpus_file=corpus, progress=False, **settings)
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu
            words = m.summary["words_processed"]
            v = m.wv.vectors
            assert v.ctypes.data == m.wv._buffer_address() and v.base is m.wv
            assert not np.shares_memory(v, v.copy())
            print(f"[firth] wv.vectors shares firth's buffer: address {v.ctypes.data:#x} == "
                  f"{m.wv._buffer_address():#x}, base is the KeyedVectors, no copy")
            path = os.path.join(tmp, "firth.bin")
            m.wv.save_word2vec_format(path, binary=True)
            acc_firth_eval = m.wv.evaluate_word_analogies(questions, restrict_vocab=30000)[0]
        else:
            from gensim.models import Word2Vec

            logging.basicConfig(level=logging.WARNING)
            m = Word2Vec(corpus_file=corpus, **settings)
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu
            path = os.path.join(tmp, "gensim.bin")
            m.wv.save_word2vec_format(path, binary=True)
            acc_firth_eval = None
            if words is None:
                words = sum(m.wv.get_vecattr(w, "count") for w in m.wv.index_to_key) * a.epochs
        kv = GensimKV.load_word2vec_format(path, binary=True)
        acc = kv.evaluate_word_analogies(questions, restrict_vocab=30000)[0]
        results[run] = (wall, cpu, acc, len(kv))
        print(f"[{run}] end {time.strftime('%H:%M:%S')} load average {load()}: wall {wall:.1f} s, CPU {cpu:.1f} s, "
              f"vocab {len(kv)}, analogy {acc * 100:.2f}%"
              + (f" (firth's own evaluation {acc_firth_eval * 100:.2f}%)" if acc_firth_eval is not None else ""),
              flush=True)
    print(f"\nwords = vocabulary words x epochs = {words}")
    print("| run | wall s | CPU s | words/s (wall) | analogy % (gensim eval, restrict 30000) | vocab |")
    print("|---|---:|---:|---:|---:|---:|")
    for run, (wall, cpu, acc, vocab) in results.items():
        print(f"| {run} | {wall:.1f} | {cpu:.1f} | {words / wall:,.0f} | {acc * 100:.2f} | {vocab} |")
    if "firth" in results and "gensim" in results:
        (wf, cf, af, _), (wg, cg, ag, _) = results["firth"], results["gensim"]
        print(f"\nfirth / gensim words/s: {wg / wf:.2f}x by wall time, {cg / cf:.2f}x by CPU time; "
              f"analogy difference {(af - ag) * 100:+.2f} points")


if __name__ == "__main__":
    main()
