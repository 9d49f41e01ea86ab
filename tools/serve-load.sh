#!/usr/bin/env bash
# Load on loopback against `arbor serve` with wrk, beside the same searches in-process, and a hot
# reload during a wrk run. Needs a release build (swift build -c release) and wrk (apt-get install wrk).
#
#   tools/serve-load.sh INDEX QUERIES.npy [OTHER_INDEX]
#
# Every request is POST /search {"vector": row, "k": 100, "beam": 400} over the rows of QUERIES.npy,
# in turn. wrk runs one thread (the machine's cores are shared with the server) for $SECONDS_PER
# seconds (default 20) at 1, 8 and 64 connections; then the in-process baseline at 1, 2 and 8
# threads; then, with OTHER_INDEX, a 30 s run at 8 connections during which OTHER_INDEX is copied
# beside INDEX and renamed over it (INDEX is restored from a copy at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
index=$1 queries=$2 other=${3:-}
seconds=${SECONDS_PER:-20}
port=${PORT:-18480}
k=${K:-100} beam=${BEAM:-400}
arbor=.build/release/arbor
work=$(mktemp -d)
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$queries" "$k" "$beam" > "$work/search.lua" <<'PY'
import sys, numpy as np
q = np.load(sys.argv[1]).astype(np.float32)
k, beam = sys.argv[2], sys.argv[3]
print("local bodies = {")
for row in q:
    print('[[{"vector":[' + ",".join(repr(float(x)) for x in row) + '],"k":' + k + ',"beam":' + beam + '}]],')
print("}")
print('''local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end''')
PY

"$arbor" serve --index "$index" --port "$port" --reload-poll-ms 200 --max-k 1000 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "localhost:$port/health" > /dev/null && break; sleep 0.2; done
curl -s "localhost:$port/health"; echo
# Warm-up (page cache, workspaces).
wrk -t1 -c8 -d3s -s "$work/search.lua" "http://127.0.0.1:$port/search" > /dev/null

summary() {  # wrk output -> one line
    awk -v c="$1" '/Requests\/sec/ {qps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
        /requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Socket errors/ {sock=$0}
        END {printf "wrk %3d connections: %s QPS, p50 %s, p99 %s, %s requests, non-2xx %s, %s\n", c, qps, p50, p99, n, bad+0, (sock==""?"no socket errors":sock)}'
}
for c in 1 8 64; do
    wrk -t1 -c"$c" -d"${seconds}s" --latency -s "$work/search.lua" "http://127.0.0.1:$port/search" > "$work/wrk-$c.txt"
    summary "$c" < "$work/wrk-$c.txt"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""

"$arbor" serve --index "$index" --in-process "$queries" --threads 1,2,8 --seconds "$seconds" --k "$k" --beam "$beam"

if [[ -n "$other" ]]; then
    cp "$index" "$work/original.arbor"
    "$arbor" serve --index "$index" --port "$port" --reload-poll-ms 200 2> "$work/serve.log" &
    server=$!
    for _ in $(seq 1 100); do curl -sf "localhost:$port/health" > /dev/null && break; sleep 0.2; done
    wrk -t1 -c8 -d30s --latency -s "$work/search.lua" "http://127.0.0.1:$port/search" > "$work/wrk-reload.txt" &
    loader=$!
    sleep 10
    cp "$other" "$index.staged" && mv "$index.staged" "$index"
    echo "renamed $other over $index at +10 s"
    sleep 5
    curl -s "localhost:$port/health"; echo
    wait "$loader"
    summary 8 < "$work/wrk-reload.txt"
    grep reloaded "$work/serve.log" || echo "no reload logged"
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
    cp "$work/original.arbor" "$index.staged" && mv "$index.staged" "$index"
fi
