#!/usr/bin/env python3
"""Training and validation text for the character LMs behind `firth tag train --char-lm`.

Writes two files: TRAIN holds the first --gutenberg-chars characters of the raw, cased
Gutenberg books (each line stripped of its indentation, runs of spaces collapsed, empty lines
dropped) followed, --repeat times, by the sentences of the CoNLL-2003 files given (tokens
joined by single spaces, as the tagger's feature extractor writes a sentence; -DOCSTART-
lines dropped); VALID holds --valid-chars characters of Gutenberg lines taken from the end of
the books, which TRAIN never reaches. eng.testb must not be passed.

Usage: charlm_corpus.py GUTENBERG_RAW(.gz) TRAIN VALID [CONLL_FILE ...]
"""
import argparse
import gzip


def gutenberg_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = " ".join(line.split())
            if line:
                yield line


def conll_sentences(path):
    words = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if not cols:
                if words:
                    yield " ".join(words)
                words = []
            elif cols[0] != "-DOCSTART-":
                words.append(cols[0])
    if words:
        yield " ".join(words)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gutenberg")
    ap.add_argument("train")
    ap.add_argument("valid")
    ap.add_argument("conll", nargs="*")
    ap.add_argument("--gutenberg-chars", type=int, default=30_000_000)
    ap.add_argument("--valid-chars", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    for c in a.conll:
        if c.endswith("testb"):
            raise SystemExit(f"{c}: the test file must not be read for the LMs")
    lines = list(gutenberg_lines(a.gutenberg))
    valid, n = [], 0
    while lines and n < a.valid_chars:
        line = lines.pop()
        valid.append(line)
        n += len(line) + 1
    with open(a.valid, "w", encoding="utf-8") as f:
        f.write("\n".join(reversed(valid)) + "\n")
    with open(a.train, "w", encoding="utf-8") as f:
        n = 0
        for line in lines:
            if n >= a.gutenberg_chars:
                break
            f.write(line + "\n")
            n += len(line) + 1
        sents = [s for c in a.conll for s in conll_sentences(c)]
        for _ in range(a.repeat):
            for s in sents:
                f.write(s + "\n")


if __name__ == "__main__":
    main()
