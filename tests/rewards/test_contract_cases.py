"""Issue #11, each numbered case as found, and its kind: the answer contract
(`parallel_r1.rewards.contract`) read and compared the same way everywhere."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.eval.metrics import maj_at_k, parallel_ratio
from parallel_r1.format import is_valid, validate
from parallel_r1.format.stats import summarize
from parallel_r1.rewards import REWARDS, grade, grade_response
from parallel_r1.rl import group_advantages


def fa(answer: str) -> str:
    return f"We work it out.\nFinal Answer: {answer}"


@pytest.mark.parametrize("pred, gold, right", [
    ("3*pi", "3", False), ("2*sqrt(3)", "2", False), ("-2*pi", "-2\\pi", True),
    ("3*pi", "3\\pi", True), ("2*sqrt(3)", "2\\sqrt{3}", True), ("sqrt(2)*sqrt(8)", "4", True),
    ("exp(2)", "e^2", True), ("ln(e^2)", "2", True), ("pi/2", "\\frac{\\pi}{2}", True),
    ("5*sqrt(2)", "5", False), ("e", "2.718", False),
])
def test_case1_plain_text_math_words(pred, gold, right):
    assert grade_response(fa(pred), gold)[1] is right


@pytest.mark.parametrize("pred, gold, right", [
    ("16 (not 18)", "18", False), ("16 (not 18)", "16", True),
    ("18, which is 2 more than 16", "18", True), ("18, which is 2 more than 16", "16", False),
    ("18, not 16", "16", False), ("18 because 20 - 2 = 18", "18", True),
    ("16 or 18", "18", False), ("16 or 18", "16", False), ("18 (or maybe 16)", "18", False),
    ("The answer is 18 apples.", "18", True), ("x is 5", "5", True),
])
def test_case2_answer_line_with_words(pred, gold, right):
    assert grade_response(fa(pred), gold)[1] is right


@pytest.mark.parametrize("line", ["**Final Answer**: 18", "**Final Answer:** 18",
                                  "### Final Answer: 18", "Final Answer: **18**",
                                  "**Final Answer**\n\n18", "*Final Answer*: 18"])
def test_case3_markdown(line):
    text = "Steps.\n" + line
    assert grade_response(text, "18") == (grade_response(text, "18")[0], True)
    assert grade_response(text, "17")[1] is False
    assert "missing_answer" not in {i.code for i in validate(text)}


@pytest.mark.parametrize("pred, gold, right", [
    ("4\\sqrt(2)", "4", False), ("4\\sqrt(2)", "4\\sqrt{2}", True), ("3\\sqrt(12)", "6\\sqrt3", True),
    ("\\sqrt(2)/2", "\\frac{1}{\\sqrt2}", True), ("2\\sqrt 5", "2\\sqrt{5}", True),
])
def test_case4_sqrt_with_parentheses(pred, gold, right):
    assert grade(pred, gold) is right


@pytest.mark.parametrize("pred, gold, right", [
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", False), ("2^{-99}", "2^{-98}", False),
    ("10^{-7}", "2\\times10^{-7}", False), ("1\\times10^{-20}", "0", False),
    ("(2^{-99}, 1)", "(2^{-98}, 1)", False), ("\\frac{1}{2^{99}}", "2^{-99}", True),
    ("1e-7", "0.0000001", True),
])
def test_case5_tiny_values_compare_relatively(pred, gold, right):
    assert grade(pred, gold) is right


CUT = ("Two ways.\n<Parallel><Path>\n6*3 = 18.\nFinal Answer: 18\n</Path><Path>\n"
       "Alternatively 5*3 = 15, so maybe the count is")


def test_case6_one_reading_everywhere(tmp_path):
    # The default grader reads no answer in a cut-off block, and so does everything else.
    assert grade_response(CUT, "18") == (None, False)
    score, parts = REWARDS.get("accuracy_reward")(CUT, "18", grader="math-verify")
    assert (score, parts["pred"]) == (-1.0, None)
    assert "missing_answer" in {i.code for i in validate(CUT)}
    assert summarize([CUT], "strict").num_no_answer == 1
    src = tmp_path / "cut.jsonl"
    src.write_text(json.dumps({"response": CUT, "answer": "18"}) + "\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["grade", str(src)])
    assert "accuracy 0.0000 (0/1)" in out.output and "rows without an answer: 1" in out.output
    # The paper's reading (its 300-character window of the tag-free text) reads the path, as
    # the paper's code does; check-format in paper mode counts the same way.
    assert grade_response(CUT, "18", "paper") == ("18", True)
    assert REWARDS.get("accuracy_reward")(CUT, "18", grader="paper")[0] == 1.0
    assert summarize([CUT], "paper").num_no_answer == 0


def test_case6_summary_and_main_text_are_read():
    closed = "Go.\n<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>x</Summary>\n"
    assert grade_response(closed + "Final Answer: 18", "18") == ("18", True)
    in_summary = closed.replace("<Summary>x", "<Summary>so Final Answer: 18")
    assert grade_response(in_summary, "18") == ("18", True)
    in_path = closed.replace("<Path>a", "<Path>Final Answer: 18")
    assert grade_response(in_path, "18") == (None, False)
    assert "missing_answer" in {i.code for i in validate(in_path)}


def test_case7_votes_group_equivalent_answers():
    preds = ["0.5", "\\frac{1}{2}", "1/2", "0.25", "0.25"]
    correct = [float(grade(p, "\\frac12")) for p in preds]
    assert correct == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert maj_at_k([preds], [correct]) == 1.0
    assert maj_at_k([preds], [correct], grader=None) == 0.0  # raw strings: 0.25 wins


def test_case7_report_columns_vote_by_equivalence():
    from parallel_r1.eval.report import grader_figures, sc_figures

    preds = ["0.5", "\\frac{1}{2}", "1/2", "0.25", "0.25"]
    rows = [{"run": run, "benchmark": "b", "problem_id": "p", "problem_index": 0, "sample": i,
             "num_tokens": 10, "correct": p != "0.25",
             "grades": {"math-verify": {"pred": p, "correct": p != "0.25"}}}
            for run in ("model", "sc") for i, p in enumerate(preds)]
    model = [[r for r in rows if r["run"] == "model"]]
    assert grader_figures(model, "math-verify", 5)["maj"]["value"] == 1.0
    assert sc_figures(model, rows, "b", ["math-verify"])["maj"]["math-verify"]["value"] == 1.0


def test_case8_tied_group_has_zero_advantages():
    adv, metrics = group_advantages("grpo", torch.tensor([1.2] * 8), 8)
    assert torch.equal(adv, torch.zeros(8))
    assert metrics["frac_zero_std_groups"] == 1.0
    for name in ("dr_grpo", "rloo"):
        adv, metrics = group_advantages(name, torch.tensor([1.2] * 8 + [0.7] * 8), 8)
        assert torch.equal(adv, torch.zeros(16)) and metrics["frac_zero_std_groups"] == 1.0


EMPTY = "Go.<Parallel><Path></Path><Path>  </Path></Parallel>\n<Summary></Summary>\nFinal Answer: 18"
FULL = "Go.<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 18"


def test_case9_empty_paths_and_summaries():
    assert {"empty_path", "empty_summary"} <= {i.code for i in validate(EMPTY)}
    assert is_valid(EMPTY, "paper")  # the paper's rule, kept in paper mode
    assert parallel_ratio([EMPTY]) == 0.0 and parallel_ratio([FULL]) == 1.0
    strict = REWARDS.get("emphase_parallel")
    assert strict(EMPTY, "18", grader="math-verify")[0] < 1.2  # no bonus in strict mode
    assert strict(FULL, "18", grader="math-verify")[0] == 1.2
    assert strict(EMPTY, "18", grader="paper")[0] == 1.2  # the paper pays it
    assert REWARDS.get("accuracy_parallel_reward")(EMPTY, "18", grader="math-verify")[0] == 1.0
    assert REWARDS.get("gsm8k/emphase_parallel")(EMPTY, "18", grader="math-verify")[0] < 1.2
