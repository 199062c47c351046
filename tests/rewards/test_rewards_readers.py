"""Issue 22 item 9: the "common" answer reader (`####`, `the answer is`) for eval and grade, and
the reward that never uses it."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.errors import UnknownNameError
from parallel_r1.rewards import REWARDS, grade_response_detail
from parallel_r1.rewards.readers import (
    ANSWER_READERS,
    common_form,
    read_common,
    read_final_answer,
)

GSM8K_SOLUTION = ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
                  "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18")

# (response, gold, what the common reader reads): each form with its variants.
FORMS = [
    (GSM8K_SOLUTION, "18", "18"),                               # GSM8K's own, at the end
    ("#### 18", "18", "18"),
    ("####18", "18", "18"),
    ("so she pays #### 18", "18", "18"),                        # mid-line: not a heading
    ("#### 1,234", "1234", "1,234"),                            # thousands separator
    ("#### $1,234.50", "1234.5", "$1,234.50"),                  # money, decimals
    ("#### -3.5", "-7/2", "-3.5"),                              # negative decimal
    ("#### −3", "-3", "−3"),                                    # unicode minus
    ("#### **18**", "18", "**18**"),                            # markdown
    ("#### \\frac{1}{2}", "0.5", "\\frac{1}{2}"),               # LaTeX
    ("#### $\\frac{3}{4}$", "3/4", "$\\frac{3}{4}$"),
    ("#### 18.", "18", "18"),                                   # closing period dropped
    ("#### 18 dollars", "18", "18 dollars"),                    # unit: the grader reduces it
    ("The answer is 42.", "42", "42"),
    ("The answer is $42$.", "42", "$42$"),
    ("the answer is: 42", "42", "42"),
    ("So the answer is 1,234!", "1234", "1,234"),
    ("The answer is -0.75 because 3/4 is lost.", "-3/4", "-0.75 because 3/4 is lost"),
    ("The answer is 3.5 cm. Then we check it.", "3.5", "3.5 cm"),    # decimal point kept
    ("The answer is $18. She pays $3 for it.", "18", "$18"),    # money, not math
    ("The answer is **42**.", "42", "**42**"),
    ("The answer is \\(\\frac{1}{2}\\).", "1/2", "\\(\\frac{1}{2}\\)"),
    ("The answer is:\n\n$$42$$\n", "42", "$$42$$"),             # after a colon: the next line
    ("The final answer is $42$. I hope it is correct.", "42", "$42$"),  # Minerva / lm-eval
    ("Answer: 42", "42", "42"),                                 # simple-evals
    ("**Answer:** 42", "42", "42"),
    ("**Answer**: 42", "42", "42"),
    ("### Answer\n\n42", "42", "42"),                          # a label alone on its line
    ("**Answer**\n$$42$$", "42", "$$42$$"),
    ("#### Answer\n42", "42", "42"),                           # a heading, then the answer
    ("ANSWER: (C)", "C", "(C)"),                                # a choice letter
    ("The answer is x = 3.", "3", "x = 3"),
]


@pytest.mark.parametrize("response, gold, pred", FORMS)
def test_each_common_form_is_read_and_graded(response, gold, pred):
    verdict = grade_response_detail(response, gold, "math-verify", "common")
    assert (verdict.pred, verdict.correct) == (pred, True)
    # The contract finds none of them: "no answer", which is what issue 22 reported.
    assert grade_response_detail(response, gold, "math-verify").pred is None


# (response, what the common reader reads or None): headings, prose, and text it must not read.
NOT_ANSWERS = [
    ("#### Step 2: add them\n", None),                          # markdown heading
    ("#### Final Answer\n", None),                              # a heading with no answer after
    ("#### 1. Setting up\n#### 2) Solving\n", None),            # numbered headings
    ("#### 3 Solving for x\nThe answer is 5.", "5"),
    ("We need the answer\nmaybe 3", None),                     # "answer" ends a sentence
    ("##### 18", None),                                         # five #: a level-5 heading
    ("We ask what the answer is.\nIt is 5.", None),             # "answer is" with nothing after
    ("The answers: 4 and 5", None),                             # "answers" is another word
    ("He answered: 7", None),
    ("<Parallel><Path>#### 42</Path><Path>The answer is 41</Path></Parallel>"
     "<Summary>both</Summary> done", None),                     # inside paths: never read
    ("<Parallel><Path>x</Path><Path>y</Path></Parallel><Summary>So #### 42</Summary>", "42"),
    ("#### Step 1\nadd\n#### 2. Result\nThe answer is 12.", "12"),  # headings skipped
    ("The answer is.\nThe answer is 9.", "9"),
]


@pytest.mark.parametrize("response, pred", NOT_ANSWERS)
def test_what_is_not_a_common_form(response, pred):
    assert read_common(response) == pred


# Priority: the contract (Final Answer, then boxes) first, then ####, then answer statements;
# within one form the last wins.
PRIORITY = [
    ("Final Answer: 7\n#### 8\nThe answer is 9.", "7"),
    ("\\boxed{7}\n#### 8\nThe answer is 9.", "7"),
    ("#### 8\nThe answer is 9.", "8"),                           # #### outranks a later statement
    ("#### 5\nWait, that was wrong.\n#### 6", "6"),              # last #### wins
    ("The answer is 16. Wait: the answer is 18.", "18"),          # last statement wins
    ("The answer is 16.\nAnswer: 18", "18"),
    ("Final Answer: The final answer is $42$. I hope it is correct.",
     "The final answer is $42$. I hope it is correct."),          # the contract's line, graded 42
]


@pytest.mark.parametrize("response, pred", PRIORITY)
def test_priority_between_forms(response, pred):
    assert read_common(response) == pred


def test_minerva_line_under_the_contract_still_grades_right():
    line = "Final Answer: The final answer is $42$. I hope it is correct."
    for reader in ("final-answer", "common"):
        assert grade_response_detail(line, "42", "math-verify", reader).correct


def test_every_grader_reads_common_forms_then_compares_its_own_way():
    text = "She pays $<<9*2=18>>18.\n#### 18"
    for grader in ("math-verify", "paper", "paper-gsm8k"):
        assert grade_response_detail(text, "18", grader).pred is None
        verdict = grade_response_detail(text, "18", grader, "common")
        assert (verdict.pred, verdict.correct) == ("18", True), grader
    # The reader only finds the answer; each grader compares it its own way (the paper's: strings).
    verdicts = {g: grade_response_detail("#### 0.5", "\\frac{1}{2}", g, "common")
                for g in ("math-verify", "paper", "paper-gsm8k")}
    assert {g: (v.pred, v.correct) for g, v in verdicts.items()} == {
        "math-verify": ("0.5", True), "paper": ("0.5", False), "paper-gsm8k": ("0.5", False)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "Final Answer: 3", "Final Answer:", "\\boxed{4}", "\\boxed{", "#### 5", "#### Step", "The "
    "answer is 6.", "Answer:", "<Parallel><Path>#### 1</Path><Path>b</Path></Parallel>",
    "<Summary>the answer is 2</Summary>", "words", "$", "\n", "**", " "]), max_size=12),
    st.sampled_from(["strict", "paper", "paper-gsm8k"]))
def test_common_reads_whatever_the_contract_reads(parts, reading):
    text = "".join(parts)
    found = read_final_answer(text, reading)
    if found is not None:
        assert read_common(text, reading) == found
    elif reading == "strict":
        assert read_common(text, reading) == common_form(text)


def test_unknown_reader_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: common, final-answer"):
        grade_response_detail("#### 1", "1", "math-verify", "gsm8k")
    assert ANSWER_READERS.names() == ["common", "final-answer"]


@pytest.mark.parametrize("response", ["#### 42", "The answer is 42.", "Answer: 42",
                                      GSM8K_SOLUTION.replace("18", "42")])
@pytest.mark.parametrize("grader", ["paper", "math-verify"])
def test_the_rl_reward_never_reads_common_forms(response, grader):
    """Every reward, under both graders: a response in a common form has no answer (acc 0)."""
    for name in REWARDS.names():
        score, parts = REWARDS.get(name)(response, "42", grader=grader, step=1)
        assert parts["pred"] is None and parts["acc"] == 0.0, (name, parts)
        assert parts.get("has_answer", 0.0) == 0.0, name


_spec = importlib.util.spec_from_file_location(
    "adversarial_inputs", Path(__file__).resolve().parents[2] / "bench" / "adversarial_inputs.py")
INPUTS = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(INPUTS)
SPAM = ["answer is ", "answer is.\n", "answer:\n", "Answer\n", "# Answer **\n", "x answer\n", "Answer: $", "#### ", "####\n", "#### 1. A ",
        "$1. $", "\\(", "The answer is $", "answer: \n\n\n"]


@pytest.mark.parametrize("pattern", SPAM + ["dollars", "boxed_open", "newlines", "spaces"])
def test_common_reader_is_linear_on_1mb_of_spam(pattern):
    text = (INPUTS.adversarial(pattern, 1 << 20) if pattern in INPUTS.PATTERNS
            else (pattern * ((1 << 20) // len(pattern) + 1))[:1 << 20])
    started = time.perf_counter()
    read_common(text)
    assert time.perf_counter() - started < 10.0  # a quadratic scan takes minutes here
