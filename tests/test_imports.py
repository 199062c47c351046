"""Import layering (STYLE.md rule 9): each layer imports only what it may, checked in a fresh
interpreter so other tests' imports cannot hide a violation."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "accelerate", "peft", "vllm", "fastapi", "uvicorn",
         "openai", "httpx", "typer", "matplotlib", "datasets")

LAYERS = {
    "parallel_r1": HEAVY,
    "parallel_r1.format": HEAVY,
    "parallel_r1.rewards": HEAVY,
    "parallel_r1.eval.metrics": HEAVY,
    "parallel_r1.data": HEAVY,
    "parallel_r1.registry": HEAVY,
    "parallel_r1.eval.paired": HEAVY,
    "parallel_r1.eval.grid_report": HEAVY,
    "parallel_r1.eval.seed_stats": HEAVY,
    "parallel_r1.eval.grid_verdicts": HEAVY,
    "parallel_r1.train.grid": HEAVY,
    "parallel_r1.structure": tuple(m for m in HEAVY if m != "torch"),
    "parallel_r1.engine.torch_engine": ("trl", "accelerate", "peft", "vllm", "fastapi",
                                        "openai", "typer", "matplotlib"),
    "parallel_r1.models": ("trl", "vllm", "fastapi", "openai", "typer"),
    # the block program and the HTTP backend need no model code: no transformers
    "parallel_r1.engine.driver": ("transformers", "trl", "vllm", "fastapi", "httpx", "typer"),
    "parallel_r1.engine.openai_backend": ("transformers", "trl", "vllm", "fastapi", "typer"),
}


def loaded_after_import(module: str) -> set[str]:
    code = (f"import sys, json; import {module}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_layer_imports_nothing_above_it(module):
    leaked = loaded_after_import(module) & set(LAYERS[module])
    assert not leaked, f"importing {module} loads {sorted(leaked)}"
