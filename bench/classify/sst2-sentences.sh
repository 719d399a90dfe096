#!/usr/bin/env bash
# SST-2 trained on its 6,920 sentences only (no phrase labels), with `firth classify train`'s
# defaults: the recipe a user gets on their own `label<TAB>text` data, plus word vectors
# firth trains with the run's seed on modern text that keeps punctuation (sst_sg200 in
# bench/recipe-common.sh; dev 80.93 against gut8's 80.39 over three paired seeds, session 18).
# Usage: bench/classify/sst2-sentences.sh SEED.
# Last line: the --json summary (test_accuracy in percent). See docs/classify.md.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
vec=$(sst_sg200 "$seed")
T=$DATA/sst/trees
"$FIRTH" classify train --train "$T/train.txt" --dev "$T/dev.txt" --test "$T/test.txt" \
    --sst-labels binary --embeddings "$vec" --out "$RUNS/sst2-sentences-s$seed" \
    --threads "$THREADS" --seed "$seed" --quiet --json
finished
