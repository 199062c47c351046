"""Graders: a table of equivalences, the paper normaliser's quirks, threads, and the CLI's helper."""

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.errors import UnknownNameError
from parallel_r1.rewards.grading import (
    GRADERS,
    grade,
    grade_response,
    normalize_paper,
)

# (pred, gold, math-verify verdict, paper verdict). Rows where the two differ are the paper's
# normaliser getting it wrong (or, for "3,4", accepting a pair as a number).
EQUIVALENCES = [
    ("18", "18", True, True),
    ("18.", "18", True, False),  # paper quirk: the sentence period stays
    ("18.0", "18", True, False),  # paper quirk
    ("36.00", "36", True, False),  # paper quirk
    ("\\frac{1}{2}", "0.5", True, False),  # paper quirk: no numeric comparison
    ("0.5", "1/2", True, False),  # paper quirk
    ("\\dfrac{2}{3}", "\\frac23", True, False),  # paper quirk: \dfrac is not \frac
    ("1,000", "1000", True, True),
    ("1,000,000", "1000000", True, True),
    ("1,000.", "1000", True, False),  # paper quirk
    ("-1,234", "-1234", True, False),  # paper quirk: "-1234".isdigit() is False, commas stay
    ("$4", "4", True, True),
    ("\\$4", "4", True, True),
    ("$18$", "18", True, True),
    ("4 dollars", "4", True, True),
    ("18 \\text{cm}^2", "18", True, True),
    ("x = 5", "5", True, True),
    ("\\boxed{7}", "7", True, True),
    ("−3", "-3", True, False),  # paper quirk: unicode minus
    ("The answer is 18.", "18", True, False),  # paper quirk
    ("10^{3}", "1000", True, False),  # paper quirk
    ("(1,2)", "(1,2)", True, True),
    ("3,4", "34", False, True),  # paper accepts a pair as the number 34
    ("1, 2", "2", False, False),
    ("12", "13", False, False),
    ("18", "18.5", False, False),
    ("-18", "18", False, False),
]


@pytest.mark.parametrize("pred, gold, mv, paper", EQUIVALENCES)
def test_equivalence_table(pred, gold, mv, paper):
    assert grade(pred, gold, "math-verify") is mv
    assert grade(pred, gold, "paper") is paper


def test_no_answer_is_none():
    assert grade(None, "18") is None
    assert grade(None, "18", "paper") is None


def test_unknown_grader_lists_known():
    with pytest.raises(UnknownNameError, match="math-verify, paper, paper-gsm8k"):
        grade("1", "1", "sympy")
    assert GRADERS.names() == ["math-verify", "paper", "paper-gsm8k"]


def test_paper_gsm8k_grader():
    assert grade("1,000", "1000", "paper-gsm8k") is True
    assert grade("18.", "18", "paper-gsm8k") is False
    assert grade("$18", "18", "paper-gsm8k") is True


@pytest.mark.parametrize("raw, expected", [
    ("x = \\frac12", "\\frac{1}{2}"),
    ("\\text{(A)}", "(A)"),
    ("\\boxed{5}", "5"),
    ("5 dollars", "5"),
    ("$\\sqrt3$ units", "\\sqrt{3}"),
    ("1,234", "1234"),
    ("12 \\mbox{ cm}", "12"),
    ("lava lamp", "lavlamp"),  # quirk: "a " is deleted inside words too
])
def test_paper_normaliser(raw, expected):
    assert normalize_paper(raw) == expected


def test_math_verify_off_the_main_thread():
    results = []
    worker = threading.Thread(target=lambda: results.append(grade("\\frac{1}{2}", "0.5")))
    worker.start()
    worker.join(30)
    assert results == [True]


def test_overlong_answer_is_wrong_without_parsing():
    assert grade("1" * 600, "1" * 600) is True  # a 600-digit integer is still compared exactly
    assert grade("1" * 2001, "1" * 2001) is False  # over MAX_ANSWER_CHARS: not read
    assert grade("1" * 2001, "1" * 2001, "paper") is True


def test_grade_response_pipelines():
    tail = "x" * 400
    early = "Final Answer: 18\n" + tail
    assert grade_response(early, "18") == ("18", True)
    assert grade_response(early, "18", "paper") == (None, False)  # outside the 300-char window
    boxed = "so \\boxed{18}"
    assert grade_response(boxed, "18") == ("18", True)
    assert grade_response(boxed, "18", "paper") == (None, False)
    tagged = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>Final Answer: 18."
    assert grade_response(tagged, "18") == ("18.", True)
    assert grade_response(tagged, "18", "paper") == ("18.", False)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-10**9, max_value=10**9))
def test_integers_agree_with_themselves(n):
    gold = str(n)
    assert grade(gold, gold) is True
    assert grade(f"{n:,}", gold) is True
    assert grade(f"{n}.", gold) is True
    assert grade(f"{n:,}", gold, "paper") is (n >= 0 or n > -1000)  # negatives keep commas
    assert grade(str(n + 1), gold) is False


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_graders_never_raise(text):
    assert grade(text, "18") in (True, False)
    assert grade(text, "18", "paper") in (True, False)
    assert grade("18", text) in (True, False)
