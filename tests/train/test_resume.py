"""kill -9 in the middle of RL, rerun the same command: it resumes, no stage runs twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECIPE = """
name: resume-test
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: sft, data: "synthetic:1:8:0", template: none, learning_rate: 1.0e-3,
      per_device_batch_size: 4, max_steps: 2, save_steps: 1}}
  - {{kind: rl, data: "synthetic:1:8:3", template: none, learning_rate: 1.0e-4,
      reward: accuracy_add_parallel_reward, grader: paper, per_device_batch_size: 8,
      num_generations: 4, max_steps: 6, save_steps: 2, max_tokens: 32, max_path_tokens: 12}}
"""


def _cmd(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "parallel_r1", "run", str(recipe)]


@pytest.mark.slow  # two fresh interpreters and a training run: ~40 s CPU
def test_sigkill_during_rl_then_resume(tmp_path):
    out = tmp_path / "run"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(out=out))
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(_cmd(recipe), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    rl_dir = out / "1-rl"
    deadline = time.time() + 240
    while not (rl_dir / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads((out / "state.json").read_text())["stages"]
    assert killed["sft"]["status"] == "done" and killed["rl"]["status"] == "running"
    subprocess.run(_cmd(recipe), env=env, check=True, capture_output=True, timeout=300)
    state = json.loads((out / "state.json").read_text())["stages"]
    assert state["sft"]["runs"] == 1 and state["rl"]["runs"] == 2  # sft not rerun
    assert state["rl"]["status"] == "done"
    assert state["rl"]["resumed_from"].endswith(("checkpoint-2", "checkpoint-4"))
    final = json.loads((rl_dir / "checkpoint-6" / "trainer_state.json").read_text())
    assert final["global_step"] == 6
    rows = [json.loads(line) for line in (rl_dir / "metrics.jsonl").open()]
    logged = [r["step"] for r in rows if "train_runtime" not in r]
    assert logged == list(range(1, 7))  # each step once: the resume trimmed what followed it
    assert [r["step"] for r in rows if "train_runtime" in r] == [6]
