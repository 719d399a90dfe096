#!/usr/bin/env bash
# UD English EWT UPOS with the ewt-upos preset (2-layer BiLSTM, character BiLSTM, softmax) and
# skip-gram vectors with a window of 2 (narrow windows make vectors that group words by their
# syntax) on gut8, the lower-cased CoNLL-2003 training tokens and the lower-cased EWT training
# tokens 5 times (so that every word of the training file gets a vector; dev and test are not
# read). The vectors are drawn with the same seed as the tagger: a new draw of them moves
# accuracy by about 0.2, so the spread over seeds should include it (docs/tagging.md).
# Usage: bench/tagger/ewt-upos.sh SEED. Last line: the --json summary (test accuracy).
# Optional: CHAR_LM=FWD_DIR,BWD_DIR adds `--char-lm` (contextual character-LM features,
# docs/tagging.md) and writes to upos-charlm-sSEED instead; MAX_SECONDS=S adds `--max-seconds S`.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
optional_flags upos "$seed"
E=$DATA/ud-english-ewt/pos-tsv-ud2.1-2017
vec=$RUNS/vecewt100w2-s$seed.txt
# A column file's first column, lower-cased, one sentence per line (-DOCSTART- dropped).
lower_tokens() { awk 'NF==0{printf "\n"; next} $1!="-DOCSTART-"{printf "%s ", tolower($1)}' "$1"; }
corpus_text() {
    cat "$DATA/gutenberg-en-text8style/gut8"; echo
    lower_tokens "$DATA/conll2003/eng.train"; echo
    for _ in 1 2 3 4 5; do lower_tokens "$E/en-ud-train.upos.tsv"; done
}
corpus=$RUNS/upos_w2v_corpus.txt
write_once "$corpus" corpus_text
tagger_vectors "$corpus" "$vec" "$seed" 3
"$FIRTH" tag train --preset ewt-upos --train "$E/en-ud-train.upos.tsv" --dev "$E/en-ud-dev.upos.tsv" \
    --test "$E/en-ud-test.upos.tsv" --embeddings "$vec" --out "$RUNS/$run" \
    --threads "$THREADS" --seed "$seed" "${extra[@]}" --quiet --json
finished
