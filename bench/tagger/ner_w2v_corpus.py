#!/usr/bin/env python3
"""Writes the word2vec training text for the CoNLL-2003 NER recipe (docs/tagging.md).

Every token is written the way `firth tag` looks words up (firth_models::tagger::normalize):
lower-cased, ASCII digits mapped to 0, so every key the tagger forms can have a vector.

  * the raw, cased Gutenberg text, tokenised like CoNLL-2003 / the Penn Treebank (punctuation
    split off, n't 's 're 'm 've 'll 'd split), one line per input line;
  * PTB train text (already tokenised and lower-cased; `<unk>` and the number token `N` dropped);
  * the tokens of the CoNLL training and dev files (eng.train, eng.testa), REPEAT times each,
    so that with --min-count REPEAT every word of those files gets a vector.

eng.testb is never read.

usage: ner_w2v_corpus.py GUTENBERG_RAW.gz PTB_TRAIN CONLL_FILE... [--repeat 3] > corpus.txt
"""
import argparse
import gzip
import re
import sys

QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
                        "\u2014": " -- ", "\u2013": "-", "_": " "})
CONTRACTION = re.compile(r"(?i)(\w)(n't|'s|'re|'m|'ve|'ll|'d)\b")
TOKEN = re.compile(r"""
    (?:[A-Za-z]\.){2,}            # U.S. , e.g.
  | \d+(?:[.,:/-]\d+)*            # numbers, dates, scores 6-4
  | (?i:n't|'s|'re|'m|'ve|'ll|'d)\b
  | \w+(?:[-'&]\w+)*              # words, hyphenated words, O'Brien
  | --
  | \S                            # any other character alone
""", re.X)


def normalize(tok):
    return re.sub(r"[0-9]", "0", tok.lower())


def tokenize(line):
    line = CONTRACTION.sub(r"\1 \2", line.translate(QUOTES))
    return TOKEN.findall(line)


def gutenberg_lines(path):
    """The raw Gutenberg books, one list of tokens per non-empty line."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            toks = tokenize(line)
            if toks:
                yield toks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gutenberg")
    ap.add_argument("ptb")
    ap.add_argument("conll", nargs="+")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    out = sys.stdout
    for toks in gutenberg_lines(a.gutenberg):
        out.write(" ".join(normalize(t) for t in toks) + "\n")
    with open(a.ptb, encoding="utf-8") as f:
        for line in f:
            toks = [t for t in line.split() if t not in ("<unk>", "N")]
            if toks:
                out.write(" ".join(normalize(t) for t in toks) + "\n")
    for path in a.conll:
        sents, cur = [], []
        with open(path, encoding="utf-8") as f:
            for line in f:
                cols = line.split()
                if not cols or cols[0] == "-DOCSTART-":
                    if cur:
                        sents.append(" ".join(cur))
                    cur = []
                else:
                    cur.append(normalize(cols[0]))
        if cur:
            sents.append(" ".join(cur))
        for _ in range(a.repeat):
            out.write("\n".join(sents) + "\n")


if __name__ == "__main__":
    main()
