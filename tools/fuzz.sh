#!/usr/bin/env bash
# libFuzzer runs over Arbor's readers (Linux; swiftc -sanitize=fuzzer,address). The entry points
# live in Fuzz/ (a separate package over this one), never in the main build or `swift test`.
#
#   tools/fuzz.sh build                      # build Fuzz/.build/$CONFIG/ArborFuzz (CONFIG=debug by default)
#   tools/fuzz.sh seed                       # (re)make the seed corpora in Fuzz/corpus/<target>
#   tools/fuzz.sh run TARGET RUNS [ARGS...]  # e.g. tools/fuzz.sh run npy 200000
#   tools/fuzz.sh all RUNS                   # every target, RUNS executions each
#
# Targets: index (opener, verifier, snapshot walk, layout and leaf loads, stored HNSW graph),
# npy, recbole, csv, taobao, amazon, sessions (split files, Diginetica, leave-last-out), hnsw
# (graph arrays through HNSWIndex(graph:)), parquet (footer, every column, assignment tables).
# Crashes land in Fuzz/crashes/<target>/; each one becomes a regression test. Corpora stay small
# (libFuzzer's -max_len below; new inputs found during a run go to a scratch directory, not to
# the repository).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/Fuzz"
CONFIG=${CONFIG:-debug}
BIN="$FUZZ/.build/$CONFIG/ArborFuzz"
TARGETS="index npy recbole csv taobao amazon sessions hnsw parquet"

build() {
    (cd "$FUZZ" && swift build -c "$CONFIG" -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
}

run() {
    local target=$1 runs=$2; shift 2
    local scratch="${TMPDIR:-/tmp}/arbor-fuzz-corpus/$target"
    mkdir -p "$scratch" "$FUZZ/crashes/$target"
    ARBOR_FUZZ_TARGET=$target "$BIN" -runs="$runs" -max_len=${MAX_LEN:-131072} -rss_limit_mb=3072 -timeout=20 \
        -artifact_prefix="$FUZZ/crashes/$target/" -print_final_stats=1 "$@" "$scratch" "$FUZZ/corpus/$target"
}

case "${1:-}" in
    build) build ;;
    seed) python3 "$ROOT/tools/fuzz-seeds.py" "$FUZZ/corpus" ;;
    run) shift; run "$@" ;;
    all) shift; for t in $TARGETS; do run "$t" "${1:-100000}"; done ;;
    *) sed -n 2,15p "$0"; exit 2 ;;
esac
