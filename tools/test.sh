#!/usr/bin/env bash
# The test command of the README: installs the system libraries if needed, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure-deps.sh
swift test "$@"
