"""A table of too few problems says so in one line (issue 22 item 7: quick runs printed
all-zero tables with no word that the sizes mean nothing)."""

from __future__ import annotations

import json

import pytest

from parallel_r1.eval.benchmarks import BENCHMARKS
from parallel_r1.eval.compare import compare_table
from parallel_r1.eval.metrics import MAX_HALF_WIDTH, small_sample_note, worst_half_width
from parallel_r1.eval.report import eval_table, summarize_eval


def test_the_criterion_is_the_worst_case_interval():
    assert worst_half_width(8) == pytest.approx(0.3465, abs=1e-4)
    assert worst_half_width(24) > MAX_HALF_WIDTH >= worst_half_width(25)
    assert small_sample_note([("AIME24", 30, 0.1), ("MATH", 500, 0.0)]) is None
    note = small_sample_note([("Synth-L1", 24, 0.5), ("MATH", 500, 0.4)])
    assert note == ("Note: too few problems for these figures to tell models apart (Synth-L1: "
                    "24 problems, a 95% interval up to ±20 points; 25+ problems keep it within "
                    "±20).")


def test_an_all_zero_small_table_adds_the_rule_of_three():
    note = small_sample_note([("Synth-L1", 8, 0.0)])
    assert "8 problems, a 95% interval up to ±35 points" in note
    assert note.endswith("over 8 problems the true rate may still be 38 points from it (rule of "
                         "three, 3/n).")
    assert "rule of three" not in small_sample_note([("Synth-L1", 8, float("nan"))])
    assert "rule of three" not in small_sample_note([("Synth-L1", 8, 0.25)])


def _rows(num_problems: int) -> list[dict]:
    return [{"run": "model", "benchmark": "gsm8k", "problem_id": f"p{i}", "problem_index": i,
             "sample": 0, "num_tokens": 5, "critical_path_length": 5, "finish_reason": "stop",
             "correct": False, "grades": {"math-verify": {"pred": "1", "correct": False}},
             "structure": {"num_blocks": 0, "has_valid_block": False, "is_valid": True}}
            for i in range(num_problems)]


@pytest.mark.parametrize("num_problems, noted", [(4, True), (30, False)])
def test_eval_and_compare_tables_carry_the_note(tmp_path, num_problems, noted):
    summary = summarize_eval(_rows(num_problems), [BENCHMARKS.get("gsm8k")], {"gsm8k": 1},
                             ["math-verify"])
    table = eval_table(summary, "m")
    assert (f"GSM8K: {num_problems} problems" in table) == noted
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "summary.json").write_text(json.dumps(summary))
    last = compare_table([tmp_path / "ev"]).splitlines()[-1]
    assert last.startswith("Note: too few problems") == noted
    assert ("rule of three" in last) == noted  # every figure is 0 here
