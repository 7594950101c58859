#!/usr/bin/env bash
# Create .venv and install pepcurr with its test tools.
# torch is pinned to the CPU wheel only when no torch is installed yet, so a
# machine that already has a CUDA build of torch keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
