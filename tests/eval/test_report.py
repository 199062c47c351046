"""`eval.report`: eval figures on hand-made rows, the table layout, atomic writes, plots."""

from __future__ import annotations

import json

import pytest

from parallel_r1.errors import UnknownNameError
from parallel_r1.eval.benchmarks import BENCHMARKS, parse_names
from parallel_r1.eval.plots import plot_lines
from parallel_r1.eval.report import (
    eval_table,
    sc_figures,
    summarize_eval,
    write_json,
)


def _row(problem, sample, correct, pred, *, run="model", tokens=10, block=False, paper=None):
    return {"run": run, "benchmark": "aime24", "problem_id": f"p{problem}",
            "problem_index": problem, "sample": sample, "num_tokens": tokens,
            "critical_path_length": tokens - 2, "finish_reason": "stop", "correct": correct,
            "grades": {"math-verify": {"pred": pred, "correct": correct},
                       "paper": {"pred": pred, "correct": correct if paper is None else paper}},
            "structure": {"num_blocks": int(block), "has_valid_block": block, "is_valid": True}}


def _rows():
    return [_row(0, 0, True, "1", block=True), _row(0, 1, False, "2", paper=True),
            _row(1, 0, False, "3"), _row(1, 1, False, None, block=True)]


def test_figures_of_hand_made_rows():
    bench = BENCHMARKS.get("aime24")
    s = summarize_eval(_rows(), [bench], {"aime24": 2}, ["math-verify", "paper"])
    b = s["benchmarks"]["aime24"]
    mv = b["grades"]["math-verify"]
    assert mv["mean"]["value"] == pytest.approx(0.25)
    assert mv["pass_unbiased"]["value"] == pytest.approx(0.5)
    assert mv["maj"]["value"] == pytest.approx(0.5)  # tie "1"/"2" goes to the first: right
    assert mv["no_answer"] == pytest.approx(0.25)
    assert b["grades"]["paper"]["mean"]["value"] == pytest.approx(0.5)
    assert b["disagreement"]["paper"] == pytest.approx(0.25)
    assert b["parallel_ratio"]["value"] == pytest.approx(0.5)
    assert b["critical_path"]["value"] == pytest.approx(8)
    assert s["avg"]["math-verify"]["value"] == pytest.approx(0.25)
    table = eval_table(s, "m")
    assert "| m | 50.0 | 25.0 [" in table and "AIME24 Mean@2 / Pass@2" in table
    assert "paper: 25.0%" in table


def test_self_consistency_takes_the_prefix_that_fits_the_budget():
    model = [[_row(0, 0, False, "1", tokens=10), _row(0, 1, False, "1", tokens=10)]]
    sc = [_row(0, j, j > 0, "9" if j else "5", run="sc", tokens=7) for j in range(4)]
    fig = sc_figures(model, sc, "aime24", ["math-verify"])
    assert fig["samples_used"] == 2 and fig["tokens"] == 14 and fig["budget"] == 20
    assert fig["maj"]["math-verify"]["value"] == 0.0  # "5" then "9": the tie goes to the first


def test_write_json_is_atomic_and_nan_safe(tmp_path):
    path = write_json(tmp_path / "a" / "s.json", {"x": float("nan"), "y": [1.5]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1.5]}
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]


def test_plot_is_a_png(tmp_path):
    path = plot_lines(tmp_path / "p.png", "t", "step", {"a": ([1, 2], [0.1, 0.2])})
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_benchmark_names():
    assert [b.name for b in parse_names("gsm8k, aime24,gsm8k")] == ["gsm8k", "aime24"]
    assert BENCHMARKS.get("aime24").samples == 16 and BENCHMARKS.get("math300").samples == 1
    with pytest.raises(UnknownNameError, match="known: aime24"):
        parse_names("aime23")


def test_phase_plot_stacks_the_logged_phase_times(tmp_path):
    from parallel_r1.eval.plots import plot_phases

    per_step = {1: {"time/rollout_s": 2.0, "time/forward_backward_s": 1.0, "time/step_s": 3.0},
                2: {"time/rollout_s": 1.5, "time/forward_backward_s": 1.0, "time/step_s": 2.5},
                3: {"reward": 1.0}}
    path = plot_phases(tmp_path / "phase_time.png", per_step)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_phases(tmp_path / "none.png", {1: {"reward": 1.0}}) is None
