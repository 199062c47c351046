"""Importing rewards and eval.metrics stays light: no torch; rewards not even numpy or sympy."""

import subprocess
import sys


def _loaded(module, names):
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {names!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_rewards_import_is_pure():
    heavy = ["torch", "transformers", "numpy", "sympy", "math_verify", "sacrebleu", "typer"]
    assert _loaded("parallel_r1.rewards", heavy) == ""


def test_metrics_import_no_torch():
    assert _loaded("parallel_r1.eval.metrics", ["torch", "transformers", "sympy"]) == ""
