#!/usr/bin/env bash
# Makes the virtual environment of tools/python (default /work/.venv-torch, or $1) with a CPU build
# of torch from a local wheel: $TORCH_WHEEL, or the first torch-*cpu*.whl in /opt/wheels. (A plain
# `pip install torch` on Linux pulls the CUDA build, gigabytes this project does not need.)
set -euo pipefail
VENV="${1:-/work/.venv-torch}"
HERE="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$VENV"
WHEEL="${TORCH_WHEEL:-$(ls /opt/wheels/torch-*cpu*.whl 2>/dev/null | head -n 1 || true)}"
if [ -z "$WHEEL" ]; then
    echo "setup-venv.sh: no CPU torch wheel: set TORCH_WHEEL=/path/to/torch-...+cpu-....whl" >&2
    exit 1
fi
"$VENV/bin/pip" install -q "$WHEEL"
"$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
"$VENV/bin/python" -c "import torch, safetensors; print('torch', torch.__version__, 'safetensors', safetensors.__version__)"
