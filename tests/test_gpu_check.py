"""bench/gpu_check.sh in its CPU mode: the lead's single GPU run must work the first time."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu_and_reports_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    run = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh"), "--device", "cpu", "--small",
                          "--models", "small-a", "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().splitlines()[-3].startswith("| small-a |")  # the table is last
    result = json.loads(out.read_text())
    assert result["imported"] == []  # no trl, vllm, math-verify, ... : torch/transformers only
    m = result["models"]["small-a"]
    assert m["throughput"]["engine_tok_s"] > 0 and m["throughput"]["hf_generate_tok_s"] > 0
    assert [b["paths"] for b in m["blocks"]] == [2, 4, 8]
    assert all(b["blocks"] == 1 and b["speedup"] > 0 for b in m["blocks"])
    for part in m["mismatch"]:
        assert part["tokens"] > 50 and part["blocks"] > 0 and 0 <= part["max"] < 0.05
    assert "skipped" in m["vllm"] and out.with_suffix(".md").exists()
