#!/usr/bin/env bash
# Load test of `firth serve`'s nearest-neighbour query with wrk (Debian: apt-get install wrk):
# 200 concurrent connections on loopback, each request a different word of the vector file.
#
#   bench/serve/run.sh VECTORS.bin [CONNECTIONS=200] [SECONDS=30] [WRK_THREADS=2]
#
# Prints wrk's latency distribution (p50/p75/p90/p99), requests/s and errors (socket errors
# and non-2xx responses), with the machine's load before and after.
set -euo pipefail
cd "$(dirname "$0")/../.."
vectors=${1:?give a word2vec binary or text vector file}
conns=${2:-200}
secs=${3:-30}
threads=${4:-2}
firth=${FIRTH:-target/release/firth}
[ -x "$firth" ] || cargo build --release --locked -p firth-cli
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT

# The vocabulary, read from the file itself so every query word is known.
# (word2vec binary when the name ends in .bin, text otherwise).
python3 - "$vectors" > "$tmp/words" <<'PY'
import sys
p = sys.argv[1]
with open(p, "rb") as f:
    n, d = map(int, f.readline().split())
    for _ in range(n):
        if p.endswith(".bin"):
            w = bytearray()
            while (c := f.read(1)) != b" ":
                if c != b"\n":
                    w += c
            f.read(4 * d)
            print(w.decode("utf-8", "replace"))
        else:
            print(f.readline().decode().split(" ", 1)[0])
PY
echo "words: $(wc -l < "$tmp/words") from $vectors"

"$firth" serve "$vectors" --port 0 > "$tmp/out" 2> "$tmp/err" &
server=$!
for _ in $(seq 600); do grep -q "serving on" "$tmp/out" && break; sleep 0.1; done
url=$(sed -n 's/^serving on \(http:[^ ]*\)$/\1/p' "$tmp/out")
[ -n "$url" ] || { cat "$tmp/err"; exit 1; }
model=$(sed -n 's/^  \([^ ]*\) *vectors .*/\1/p' "$tmp/err" | head -1)
echo "server: $url, model id $model, pid $server"

# Warm up (page in the matrix), then measure.
WORDS="$tmp/words" MODEL="$model" wrk -t "$threads" -c "$conns" -d 3s -s bench/serve/neighbors.lua "$url" > /dev/null
echo "load before: $(cat /proc/loadavg)"
WORDS="$tmp/words" MODEL="$model" wrk -t "$threads" -c "$conns" -d "${secs}s" --latency -s bench/serve/neighbors.lua "$url"
echo "load after:  $(cat /proc/loadavg)"
ps -o pid,rss,time,cmd -p "$server"
