# Shared by the recipe scripts in bench/classify and bench/tagger (sourced, not run).
# Environment: FIRTH_DATA (default ../shared/data), FIRTH_RUNS (default runs/recipes: models,
# word vectors, logs), THREADS (default 2). Each recipe draws its word vectors with the run's
# seed and keeps them for the next run of that seed: a new draw of the vectors moves accuracy
# as much as the changes being compared (docs/tagging.md, docs/classify.md), so the spread over
# seeds includes it. With THREADS=1 the vectors, and so the whole run, are exact for a seed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${FIRTH_DATA:-../shared/data}
RUNS=${FIRTH_RUNS:-runs/recipes}
THREADS=${THREADS:-2}
mkdir -p "$RUNS"
if [ ! -d "$DATA" ]; then
    echo "no data folder $DATA; set FIRTH_DATA to the shared data sets" >&2
    exit 2
fi
cargo build --release -q -p firth-cli
FIRTH=target/release/firth

# Skip-gram vectors (200 d) on gut8: 19M words of Gutenberg fiction, lower case.
# Usage: gut8_sg200 SEED; prints the file's path.
gut8_sg200() {
    skipgram200 "$DATA/gutenberg-en-text8style/gut8" "$RUNS/gut8-sg200-s$1.bin" "$1"
}

# The classifier recipes' skip-gram command: writes OUT from CORPUS unless OUT is there, and
# prints OUT. Usage: skipgram200 CORPUS OUT SEED
skipgram200() {
    if [ ! -s "$2" ]; then
        "$FIRTH" vectors word2vec --input "$1" --output "$2" \
            --model skipgram --dim 200 --window 5 --negative 5 --sample 1e-4 --min-count 5 \
            --epochs 5 --threads "$THREADS" --seed "$3" >&2
    fi
    echo "$2"
}

# Skip-gram vectors (200 d) with gut8's settings on modern text that keeps punctuation
# (bench/classify/sst_w2v_corpus.py: Gutenberg tokenised like the Penn Treebank, PTB, UD EWT,
# Multi30k, and the words of SST's train and dev trees; never its test file).
# Usage: sst_sg200 SEED; prints the file's path.
sst_sg200() {
    local corpus=$RUNS/sst_w2v_corpus.txt
    write_once "$corpus" python3 bench/classify/sst_w2v_corpus.py \
        "$DATA/gutenberg-en-text8style/gutenberg_en_raw.txt.gz" "$DATA/ptb/ptb.train.txt" \
        "$DATA/ud-english-ewt/pos-tsv-ud2.1-2017/en-ud-train.upos.tsv" \
        "$DATA/multi30k/tok/train.lc.norm.tok.en" "$DATA/sst/trees/train.txt" \
        "$DATA/sst/trees/dev.txt"
    skipgram200 "$corpus" "$RUNS/sst-sg200-s$1.bin" "$1"
}

# Writes FILE from COMMAND's standard output unless FILE is already there, under a temporary
# name first (seeds may run side by side, and an interrupted run leaves no half file).
# Usage: write_once FILE COMMAND [ARGS...]
write_once() {
    local out=$1
    shift
    if [ ! -s "$out" ]; then
        "$@" > "$out.$$"
        mv "$out.$$" "$out"
    fi
}

# 100-d skip-gram vectors with a window of 2 for a tagger recipe, as text, drawn with the run's
# seed and kept for the next run of that seed. Usage: tagger_vectors CORPUS OUT SEED EPOCHS
tagger_vectors() {
    if [ ! -s "$2" ]; then
        "$FIRTH" vectors word2vec --input "$1" --output "$2" --format text \
            --dim 100 --window 2 --min-count 3 --epochs "$4" --threads "$THREADS" --seed "$3" >&2
    fi
}

# The optional flags a recipe takes from the environment: CHAR_LM=FWD_DIR,BWD_DIR adds
# `--char-lm` and names the run NAME-charlm-sSEED instead of NAME-sSEED; MAX_SECONDS=S adds
# `--max-seconds S`. Usage: optional_flags NAME SEED; sets `extra` (the flags) and `run`.
optional_flags() {
    extra=()
    run=$1-s$2
    if [ -n "${CHAR_LM:-}" ]; then
        extra+=(--char-lm "$CHAR_LM")
        run=$1-charlm-s$2
    fi
    if [ -n "${MAX_SECONDS:-}" ]; then
        extra+=(--max-seconds "$MAX_SECONDS")
    fi
}

# The time a recipe took, printed before its JSON summary.
started=$(date +%s)
finished() { echo "recipe wall time: $(( $(date +%s) - started )) s" >&2; }
