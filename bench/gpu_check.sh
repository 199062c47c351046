#!/usr/bin/env bash
# The built-in engine's GPU readiness check (bench/gpu_check.py): one command, no download,
# at most 8 minutes on one GPU. Runs the repository from source.
#     bash bench/gpu_check.sh                         # CUDA
#     bash bench/gpu_check.sh --device cpu --small    # the same code on CPU, in seconds
# PYTHON selects the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
