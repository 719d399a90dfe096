#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, one after another, and prints the executions of
# each. Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run.sh 300              # all targets, 5 minutes each
#   fuzz/run.sh 60 arpa tsv      # only these
#
# New inputs go to fuzz/corpus/TARGET (ignored by git); the seeds in fuzz/seeds/TARGET are
# read, never written. A crash leaves its input in fuzz/artifacts/TARGET and stops the script.
# -malloc_limit_mb makes any single allocation above 2 GB a failure, so a reader that trusts
# a size in its input before checking it against the input is caught.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(arpa ngram_binary word2vec_bin word2vec_text glove_text conll conllu sst tsv
        safetensors_model safetensors_checkpoint)
fi
mkdir -p logs
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="logs/$t.log"
    features=()
    case $t in safetensors_*) features=(--features nn) ;; esac
    nice -n 10 cargo +nightly fuzz run "${features[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || {
        echo "$t: FAILED, see fuzz/$log"
        tail -n 30 "$log"
        exit 1
    }
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "$t: ${seconds}s, $execs executions, no crash"
done
