#!/usr/bin/env bash
# The test command of the README: installs the system libraries if needed, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure-deps.sh
# Swift Testing runs suites on several threads at once, each calling into OpenBLAS. OpenBLAS's own
# thread pool is not safe to share between concurrent callers, so tests (as any program that calls
# BLAS from several threads) run it single-threaded; it is read when the library loads.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# Suites run one after another (about 40 s in all): results do not depend on what else runs.
# Tests of concurrent use (parallel searches, 2-thread builds) start their own threads.
swift test --no-parallel "$@"
