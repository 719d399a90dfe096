#!/usr/bin/env bash
# SST-5 (five classes) with the sst5 preset: sentences and their labelled phrases, gut8
# skip-gram vectors drawn with the run's seed. Usage: bench/classify/sst5.sh SEED. Last line:
# the --json summary.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
vec=$(gut8_sg200 "$seed")
T=$DATA/sst/trees
"$FIRTH" classify train --preset sst5 --train "$T/train.txt" --dev "$T/dev.txt" \
    --test "$T/test.txt" --embeddings "$vec" --out "$RUNS/sst5-s$seed" \
    --threads "$THREADS" --seed "$seed" --quiet --json
finished
