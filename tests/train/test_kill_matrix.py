"""The kill -9 matrix (scripts/kill_matrix.py): SIGKILL a tiny SFT -> RL -> eval run at seven
kinds of moment, rerun it, and find every log whole: each step and sample once, nothing left
over, each RL step on the uninterrupted run's prompts (also after a resume inside epoch 1)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kill_matrix.py"


def load_script():
    spec = importlib.util.spec_from_file_location("kill_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # eight tiny three-stage runs in fresh interpreters: minutes of CPU
def test_every_log_is_whole_after_a_kill_at_each_moment(tmp_path):
    matrix = load_script()
    reference, rows = matrix.run_matrix(tmp_path, list(matrix.SCENARIOS))
    assert reference["all_done"] and not reference["leftovers"]
    print("\n" + matrix.table(rows))
    for row in rows:
        assert matrix.passed(row), row
    broken = next(r for r in rows if r["scenario"] == "during-checkpoint-write")
    assert any("is incomplete" in line for line in broken["rerun_said"]), broken
    epoch_1 = next(r for r in rows if r["scenario"] == "rl-epoch-1")
    assert any("resuming from" in line and line.endswith("checkpoint-4")
               for line in epoch_1["rerun_said"]), epoch_1
    assert epoch_1["same_prompts"] and epoch_1["same_weights"], epoch_1
    saving = next(r for r in rows if r["scenario"] == "during-model-save")
    assert saving["left_by_kill"] and any("half-written" in s for s in saving["rerun_said"])
