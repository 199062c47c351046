"""The kill -9 matrix (scripts/kill_matrix.py): SIGKILL a tiny SFT -> RL -> eval run at six kinds
of moment, rerun it, and find every log whole: each step and sample once, nothing left over."""

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


@pytest.mark.slow  # seven tiny three-stage runs in fresh interpreters: minutes of CPU
def test_every_log_is_whole_after_a_kill_at_each_moment(tmp_path):
    matrix = load_script()
    reference, rows = matrix.run_matrix(tmp_path, list(matrix.SCENARIOS))
    assert reference["all_done"] and not reference["leftovers"]
    print("\n" + matrix.table(rows))
    for row in rows:
        assert matrix.passed(row), row
    broken = next(r for r in rows if r["scenario"] == "during-checkpoint-write")
    assert any("is incomplete" in line for line in broken["rerun_said"]), broken
    saving = next(r for r in rows if r["scenario"] == "during-model-save")
    assert saving["left_by_kill"] and any("half-written" in s for s in saving["rerun_said"])
