#!/usr/bin/env bash
# Runs tests under AddressSanitizer and ThreadSanitizer, each in a build folder of its own
# (.build-asan, .build-tsan), then the 2-thread HNSW build of the CLI under ThreadSanitizer.
# Exits non-zero on a test failure or any sanitizer report.
#
#   tools/sanitize.sh            # the concurrent and storage suites (about 10 minutes on 2 cores)
#   tools/sanitize.sh --all      # every test (much longer: training suites run 5-20x slower)
#   tools/sanitize.sh Serve HNSW # only tests whose names match these filters
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure-deps.sh

filters=(ArborServeTests ArborEngineTests ArborRetrievalTests ArborStoreTests ArborTreeTests ArborMathTests.BLASThreading)
if [[ "${1:-}" == "--all" ]]; then filters=(); elif [[ $# -gt 0 ]]; then filters=("$@"); fi
filter_args=()
if [[ ${#filters[@]} -gt 0 ]]; then filter_args=(--filter "$(IFS='|'; echo "${filters[*]}")"); fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
# halt_on_error=0: report every race, then fail at exit (TSan's exit code 66).
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

for sanitizer in address thread; do
    scratch=.build-${sanitizer:0:1}san
    echo "== swift test --sanitize=$sanitizer ${filter_args[*]:-} (scratch $scratch)"
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" 2>&1 | tail -n 3; then status=1; continue; fi
    if ! swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${filter_args[@]}" \
        > "$logs/$sanitizer.log" 2>&1; then
        echo "!! tests failed under $sanitizer"; status=1
    fi
    grep -E "^(Test run|Executed|✘|.*error:)" "$logs/$sanitizer.log" | tail -n 5 || true
    if grep -q -E "(Address|Thread|LeakSanitizer|UndefinedBehavior)Sanitizer" "$logs/$sanitizer.log"; then
        echo "!! sanitizer reports under $sanitizer:"; grep -E "SUMMARY: |WARNING: ThreadSanitizer" "$logs/$sanitizer.log" | sort | uniq -c
        status=1
    else
        echo "   no sanitizer report"
    fi
done

echo "== arbor build --synthetic 1500 --dim 8 --hnsw --hnsw-m 8 --hnsw-threads 2 under ThreadSanitizer"
swift build --sanitize=thread --scratch-path .build-tsan --product arbor 2>&1 | tail -n 1
index="$logs/hnsw.arbor"
if ! .build-tsan/debug/arbor build --synthetic 1500 --dim 8 --hnsw --hnsw-m 8 --hnsw-threads 2 --out "$index" \
    > "$logs/hnsw.log" 2>&1; then
    echo "!! the build failed or TSan reported (exit status above 0)"; status=1
fi
if grep -q "WARNING: ThreadSanitizer" "$logs/hnsw.log"; then
    grep -c "WARNING: ThreadSanitizer" "$logs/hnsw.log" | sed 's/^/!! races reported: /'; status=1
else
    echo "   no race reported"
fi
exit $status
