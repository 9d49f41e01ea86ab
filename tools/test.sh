#!/usr/bin/env bash
# The test command of the README: installs the system libraries if needed, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure-deps.sh
# Plain `swift test`: suites run in parallel. The library keeps OpenBLAS single-threaded unless a
# program asks for more (`BLAS.threads`), and its own fan-outs use one BLAS thread per worker, so
# no environment variable or serial run is needed.
# Every import of a package module is declared in Package.swift (python3 is on every Debian image
# Arbor supports; the check is skipped where it is missing).
if command -v python3 >/dev/null; then python3 tools/check-imports.py; fi
swift test "$@"
