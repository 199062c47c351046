#!/usr/bin/env bash
# The built-in engine's GPU readiness check (bench/gpu_check.py): one command, no download,
# about 5 minutes on one GPU (--budget-s). Runs the repository from source.
#     bash bench/gpu_check.sh                         # CUDA
#     bash bench/gpu_check.sh --device cpu --small    # the same code on CPU, in seconds
# PYTHON selects the interpreter (default: the project's .venv if there is one, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
default=python3
[ -x .venv/bin/python ] && default=.venv/bin/python
exec "${PYTHON:-$default}" bench/gpu_check.py "$@"
