#!/usr/bin/env python3
"""Writes the word2vec training text for the SST recipes (docs/classify.md, "Vectors from
modern text").

gut8 is lower-cased Gutenberg fiction with the punctuation stripped, so it has no vector for
`.`, `n't`, `'s` or `-lrb-`, nor for much of the vocabulary of film reviews (`predictable`,
`thriller`, `filmmaker`). This corpus keeps the punctuation and adds text that is not fiction:

  * the raw Gutenberg books, tokenised like the Penn Treebank (the tokenizer of
    bench/tagger/ner_w2v_corpus.py; brackets written as SST writes them, `-lrb-` `-rrb-`);
  * PTB train (`<unk>` and the number token `N` dropped), the UD EWT training tokens
    (web text, reviews among it), the Multi30k training captions;
  * the words of the SST training and development trees, REPEAT times, so that with
    --min-count REPEAT every word of those files gets a vector (their labels are not read).

Everything is lower-cased, as `firth classify` falls back to the lower-cased word. The SST
test file is never read.

usage: sst_w2v_corpus.py GUTENBERG_RAW.gz PTB_TRAIN EWT_TRAIN_TSV MULTI30K_TRAIN SST_TREES...
       [--repeat 5] > corpus.txt
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tagger"))
from ner_w2v_corpus import gutenberg_lines  # noqa: E402

BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
SST_LEAF = re.compile(r"\(\d+ ([^()\s]+)\)")


def write(out, toks):
    if toks:
        out.write(" ".join(BRACKETS.get(t, t).lower() for t in toks) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gutenberg")
    ap.add_argument("ptb")
    ap.add_argument("ewt")
    ap.add_argument("multi30k")
    ap.add_argument("sst", nargs="+")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    out = sys.stdout
    for toks in gutenberg_lines(a.gutenberg):
        write(out, toks)
    with open(a.ptb, encoding="utf-8") as f:
        for line in f:
            write(out, [t for t in line.split() if t not in ("<unk>", "N")])
    with open(a.ewt, encoding="utf-8") as f:
        cur = []
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                write(out, cur)
                cur = []
            else:
                cur.append(cols[0])
        write(out, cur)
    with open(a.multi30k, encoding="utf-8") as f:
        for line in f:
            write(out, line.split())
    sents = []
    for path in a.sst:
        with open(path, encoding="utf-8") as f:
            sents += [SST_LEAF.findall(line) for line in f]
    for _ in range(a.repeat):
        for toks in sents:
            write(out, toks)


if __name__ == "__main__":
    main()
