"""Two CPU processes on gloo train step for step like one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """
name: ddp-test
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: rl, data: "synthetic:1:8:3", template: none, learning_rate: 1.0e-3,
      reward: accuracy_add_parallel_reward, grader: paper, per_device_batch_size: {bs},
      num_generations: 4, max_steps: 3, save_steps: 100, max_tokens: 32, max_path_tokens: 12,
      loss_type: dapo}}
"""


def _run(tmp_path: Path, procs: int) -> list[dict]:
    out = tmp_path / f"p{procs}"
    recipe = tmp_path / f"p{procs}.yaml"
    recipe.write_text(RECIPE.format(out=out, bs=8 // procs))
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONWARNINGS": "ignore"}
    if procs == 1:
        cmd = [sys.executable, "-m", "parallel_r1", "run", str(recipe)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes/accelerate/cpu-gloo-2.yaml"), "-m", "parallel_r1", "run",
               str(recipe)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900)
    return [json.loads(line) for line in (out / "0-rl" / "metrics.jsonl").open()
            if "loss" in line and "train_runtime" not in line]


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert a["rollout/reward"] == pytest.approx(b["rollout/reward"], abs=1e-6)
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4, abs=1e-6)
