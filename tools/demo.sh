#!/usr/bin/env bash
# The main job on the embedded default: generate behaviour data, train the two-tower model, build the
# tree index, retrieve, print recall and speed against the exact scan. Installs the system libraries
# if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure-deps.sh
swift build -c release --product arbor >&2
exec .build/release/arbor demo "$@"
