#!/usr/bin/env bash
# SST-2 trained on its 6,920 sentences only (no phrase labels), with `firth classify train`'s
# defaults: the recipe a user gets on their own `label<TAB>text` data, plus word vectors
# firth trains on gut8 with the run's seed. Usage: bench/classify/sst2-sentences.sh SEED.
# Last line: the --json summary (test_accuracy in percent). See docs/classify.md.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
vec=$(gut8_sg200 "$seed")
T=$DATA/sst/trees
"$FIRTH" classify train --train "$T/train.txt" --dev "$T/dev.txt" --test "$T/test.txt" \
    --sst-labels binary --embeddings "$vec" --out "$RUNS/sst2-sentences-s$seed" \
    --threads "$THREADS" --seed "$seed" --quiet --json
finished
