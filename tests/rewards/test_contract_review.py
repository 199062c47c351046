"""Second review of the answer contract (issue #11): each test stands for a kind of fault that an
independent reviewer found after the first round, fixed as a kind, not as a string."""

from __future__ import annotations

import pytest
import torch

from parallel_r1.rewards.grading import grade_response_detail
from parallel_r1.rl.advantages import TIE_RTOL, group_advantages, tied_groups


def _right(answer: str, gold: str) -> bool:
    return grade_response_detail("Work.\nFinal Answer: " + answer, gold).correct


# ---- item 11: tied groups up to float residue, relative to the rewards' size ---------------------

@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_groups_tied_up_to_float_residue_have_zero_advantages(name, dtype):
    rewards = torch.tensor([0.1 * 3] * 4 + [0.3] * 4 + [0.5 + 0.5 * 0.2 * 2] * 4 + [0.7] * 4,
                           dtype=dtype)
    adv, metrics = group_advantages(name, rewards, 8)
    assert torch.equal(adv, torch.zeros(16)) and metrics["frac_zero_std_groups"] == 1.0
    assert metrics["reward/group_std"] == 0.0


def test_real_reward_differences_are_not_ties():
    grouped = torch.tensor([[1.0] * 7 + [1.0 + 1e-4], [0.0] * 8, [1e-9] * 8, [0.0] * 7 + [1e-9],
                            [1.2] * 7 + [1.2 * (1 + TIE_RTOL / 2)]], dtype=torch.float64)
    assert tied_groups(grouped).tolist() == [False, True, True, False, True]
    adv, metrics = group_advantages("grpo", torch.tensor([0.0] * 7 + [1.0] + [1.2] * 8), 8)
    assert adv[:8].abs().max().item() > 1.0 and metrics["frac_zero_std_groups"] == 0.5


# ---- item 4: a long decimal is right only as the correctly rounded or truncated value ----------

@pytest.mark.parametrize("answer, gold, right", [
    ("0.666666", r"\frac23", True), ("0.666667", r"\frac23", True), ("0.666665", r"\frac23", False),
    ("0.666668", r"\frac23", False), ("0.333333", r"\frac13", True), ("0.333334", r"\frac13", False),
    ("3.14159", r"\pi", True), ("3.14160", r"\pi", False), ("3.141593", r"\pi", True),
    ("3.141592", r"\pi", True), ("3.141594", r"\pi", False), ("-0.666667", r"-\frac23", True),
    ("-0.666668", r"-\frac23", False), ("1.414214", r"\sqrt2", True), ("1.414215", r"\sqrt2", False),
])
def test_long_decimals_round_or_truncate_exactly(answer, gold, right):
    assert _right(answer, gold) is right


@pytest.mark.parametrize("answer, gold, right", [
    (r"\pi+10^{-60}", r"\pi", False), (r"\sqrt{2}+10^{-300}", r"\sqrt2", False),
    (r"\sqrt{8}", r"2\sqrt2", True), (r"\frac{\pi}{6}", r"\arcsin(\frac12)", True),
])
def test_values_equal_to_50_digits_are_confirmed_with_more(answer, gold, right):
    assert _right(answer, gold) is right


# ---- item 9: votes never merge answers that name different choice letters ------------------------

@pytest.mark.parametrize("preds, grades", [
    (["(B) 12", "(C) 12", "(C) 12"], [False, True, True]),
    (["B", "(C) 12", "C"], [False, True, True]),
    (["12", "(C) 12", "(C)"], [False, True, True]),
])
def test_votes_keep_choice_letters_apart(preds, grades):
    from parallel_r1.eval.metrics import maj_at_k

    assert [grade_response_detail("Final Answer: " + p, "C").correct for p in preds] == grades
    assert maj_at_k([preds], [grades]) == 1.0


# ---- item 1: only unit symbols after a number are dropped, not any letter -----------------------

@pytest.mark.parametrize("answer, gold, right", [
    ("3 x", "3", False), ("2 n", "2", False), ("5 i", "5", False), ("3 x^2", "3", False),
    ("4 y/z", "4", False), ("3 x", "3x", True), ("12 m", "12", True), ("9.8 m/s^2", "9.8", True),
    ("5 kg", "5", True), ("2 h", "2", True), ("250 mL", "250", True), ("30 s", "30", True),
    ("100 m^2", "100", True), ("3 min", "3", True),
])
def test_only_unit_symbols_are_dropped(answer, gold, right):
    assert _right(answer, gold) is right


# ---- item 2: scale words multiply; cents and dollars-and-cents are amounts ----------------------

@pytest.mark.parametrize("answer, gold, right", [
    ("3.5 million", "3500000", True), ("3.5 million", "3.5", False), ("$3 million", "3000000", True),
    ("2 thousand", "2000", True), ("2 thousand", "2", False), ("5 dozen", "60", True),
    ("5 dozen", "5", False), ("1.2 billion people", "1200000000", True), ("4 hundred", "400", True),
    ("50 cents", "0.5", True), ("50 cents", "50", False), ("5 cents", "0.05", True),
    ("18 dollars and 50 cents", "18.50", True), ("$18 and 50 cents", "18.5", True),
    ("18 dollars and 50 cents", "18, 50", False), ("\\$2 and 5 cents", "2.05", True),
])
def test_scale_words_and_cents(answer, gold, right):
    assert _right(answer, gold) is right


# ---- item 6: struck-out text is withdrawn; an explicit correction makes what follows the answer --

@pytest.mark.parametrize("answer, gold, right", [
    ("18 is wrong, it's 16", "16", True), ("18 is wrong, it's 16", "18", False),
    ("~~18~~ 16", "16", True), ("~~18~~ 16", "18", False), ("<del>18</del> 16", "16", True),
    ("18? No, 16", "16", True), ("18? No, 16", "18", False), ("18. No, 16", "16", True),
    ("16, correction: 18", "18", True), ("16, correction: 18", "16", False),
    ("16, actually 18", "18", True), ("16, I mean 18", "18", True), ("16 I mean 18", "18", True),
    ("18 wait no 16", "16", True), ("18 (actually 16)", "16", True), ("18 (actually 16)", "18", False),
    ("The answer is actually 18", "18", True), ("16 was incorrect; 18", "18", True),
    # hedges and explanations keep their documented reading
    ("16 or 18", "18", False), ("16 or 18", "16, 18", True), ("18; 16 was wrong", "18", True),
    ("18, not 16", "18", True), ("18 rather than 16", "18", True), ("no solution", "18", False),
])
def test_self_corrections(answer, gold, right):
    assert _right(answer, gold) is right


# ---- item 12: bracket-heavy lines are refused before math-verify, fast and counted --------------

@pytest.mark.parametrize("line", ["[" * 800, "[1," * 300, "(" * 1990, "{1" * 600, "x(" * 500,
                                  "(1)" * 300, "(" * 21 + "18" + ")" * 21])
def test_bracket_heavy_lines_are_refused_fast(line):
    import time

    from parallel_r1.rewards import build_reward

    start = time.perf_counter()
    verdict = grade_response_detail("Work.\nFinal Answer: " + line, "18")
    assert (verdict.correct, verdict.refused, verdict.timed_out) == (False, True, False)
    assert time.perf_counter() - start < 1.0  # seconds each before (up to the 5 s limit)
    _, metrics = build_reward("accuracy_reward")(["Final Answer: " + line], ["18"], 1)
    assert metrics["reward/grade_refused"] == 1.0


@pytest.mark.parametrize("answer, gold", [
    ("(" * 5 + "18" + ")" * 5, "18"), (r"\frac{1}{1+\frac{1}{1+\frac{1}{2}}}", r"\frac{3}{5}"),
    (r"\begin{pmatrix} \frac{1}{2} & \frac{1}{3} \\ \frac{1}{4} & \frac{1}{5} \end{pmatrix}",
     r"\begin{pmatrix} 0.5 & \frac{1}{3} \\ 0.25 & 0.2 \end{pmatrix}"),
])
def test_answer_shaped_brackets_are_graded(answer, gold):
    verdict = grade_response_detail("Final Answer: " + answer, gold)
    assert verdict.correct and not verdict.refused


@pytest.mark.parametrize("answer, gold, right", [
    ("18, actually.", "18", True), ("18 actually", "18", True), ("18 (no remainder)", "18", True),
    ("18 is wrong", "18", False), ("18, no doubt", "18", True), ("actually it is 18", "18", True),
    ("No", "\\text{No}", True), ("(B) 16, actually (C) 18", "C", True),
])
def test_a_correction_with_nothing_after_it_withdraws_nothing(answer, gold, right):
    assert _right(answer, gold) is right
