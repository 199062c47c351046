"""`eval.compare`: one table across eval summaries and training runs."""

from __future__ import annotations

import json

import pytest

from parallel_r1.errors import DataError
from parallel_r1.eval.compare import compare_rows, compare_table


def _fig(v):
    return {"value": v, "low": v - 0.1, "high": v + 0.1}


def _summary(mean, ratio, benches=("gsm8k",)):
    titles = {"gsm8k": "GSM8K", "aime24": "AIME24"}
    out = {"graders": ["math-verify", "paper"], "benchmarks": {}, "avg": {}}
    for b in benches:
        grades = {g: {"k": 4, "mean": _fig(mean), "pass_unbiased": _fig(mean + 0.2)}
                  for g in out["graders"]}
        out["benchmarks"][b] = {"title": titles[b], "grades": grades,
                                "parallel_ratio": _fig(ratio)}
    out["avg"] = {g: _fig(mean) for g in out["graders"]}
    return out


def _write(dir_, summary):
    dir_.mkdir(parents=True)
    (dir_ / "summary.json").write_text(json.dumps(summary))
    return dir_


def test_table_has_one_row_per_eval_and_the_union_of_columns(tmp_path):
    a = _write(tmp_path / "grpo", _summary(0.25, 0.0))
    b = _write(tmp_path / "s2", _summary(0.5, 0.6, benches=("aime24", "gsm8k")))
    header, rows = compare_rows([a, b])
    assert header == ["Model", "Parallel ratio", "GSM8K Mean@4 / Pass@4", "AIME24 Mean@4 / Pass@4",
                      "Avg"]
    assert rows[0][0] == "grpo" and rows[0][3] == "–"
    assert rows[1][1] == "60.0"
    assert rows[1][2].startswith("50.0 [40.0, 60.0] / 70.0")


def test_a_run_dir_contributes_its_eval_summaries_or_its_last_steps(tmp_path):
    run = tmp_path / "run"
    _write(run / "eval" / "after-rl", _summary(0.4, 0.3))
    assert compare_rows([run])[1][0][0] == "run/eval/after-rl"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "accuracy": 0.1 * s, "parallel_ratio": 0.5}) + "\n"
                for s in range(5)))
    header, rows = compare_rows([bare])
    assert rows[0][header.index("Train accuracy")] == "40.0"
    assert "Mean@k" in compare_table([run, bare])


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError):
        compare_rows([tmp_path / "missing"])
    a = _write(tmp_path / "a", _summary(0.2, 0.0))
    with pytest.raises(DataError, match="grader"):
        compare_rows([a], grader="nope")
