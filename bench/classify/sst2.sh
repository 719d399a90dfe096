#!/usr/bin/env bash
# SST-2 with the sst2 preset: sentences and their labelled phrases, gut8 skip-gram vectors
# drawn with the run's seed.
# Usage: bench/classify/sst2.sh SEED. Last line: the --json summary. See docs/classify.md.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
vec=$(gut8_sg200 "$seed")
T=$DATA/sst/trees
"$FIRTH" classify train --preset sst2 --train "$T/train.txt" --dev "$T/dev.txt" \
    --test "$T/test.txt" --embeddings "$vec" --out "$RUNS/sst2-s$seed" \
    --threads "$THREADS" --seed "$seed" --quiet --json
finished
