"""Answer extraction: the `Final Answer:` line, boxes, the paper's window and GSM8K quirks."""

import pytest

from parallel_r1.rewards.answer import (
    extract_answer,
    extract_boxed,
    extract_final_answer,
    extract_gsm8k_number,
    strip_tags,
)


@pytest.mark.parametrize("text, expected", [
    ("Final Answer: 18", "18"),
    ("final answer:18\n", "18"),
    ("FINAL ANSWER :  7 apples  \nthe end", "7 apples"),
    ("Final Answer: 1\nmore\nFinal Answer: 2", "2"),  # the last one wins
    ("Final Answer:\n42", "42"),  # like the paper, \s* crosses the newline
    ("Final Answer:   ", None),
    ("no answer here", None),
    ("", None),
    ("Final Answer: \\boxed{3}", "\\boxed{3}"),
])
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_final_answer_first_and_window():
    text = "Final Answer: 1\n" + "x" * 400 + "\nFinal Answer: 2"
    assert extract_final_answer(text, first=True) == "1"
    assert extract_final_answer(text, window=300) == "2"
    early = "Final Answer: 5\n" + "y" * 400
    assert extract_final_answer(early) == "5"
    assert extract_final_answer(early, window=300) is None  # the paper misses it
    assert extract_final_answer(early, window=0) is None


@pytest.mark.parametrize("text, expected", [
    ("\\boxed{5}", "5"),
    ("a \\boxed{1} b \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{{a}{b}}", "{a}{b}"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces do not count
    ("\\boxed {7}", "7"),
    ("\\fbox{8}", "8"),
    ("\\boxed{3} then \\boxed{4", "3"),  # the unclosed last box is skipped
    ("\\boxed{", None),
    ("no box", None),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_extract_answer_sources():
    both = "so \\boxed{3}\nFinal Answer: 4"
    assert extract_answer(both) == "4"
    assert extract_answer(both, "boxed") == "3"
    assert extract_answer("so \\boxed{3}") == "3"
    assert extract_answer("so \\boxed{3}", "final") is None
    with pytest.raises(ValueError, match="auto, final, boxed"):
        extract_answer("x", "last")


def test_gsm8k_extraction_quirks():
    text = "Final Answer: 1,000.\nwait\nFinal Answer: 12"
    assert extract_gsm8k_number(text, first=True) == "1000."  # FIRST match, trailing "." kept
    assert extract_gsm8k_number(text, first=False) == "12"
    assert extract_gsm8k_number("Final Answer: $5", first=False) is None  # `$` breaks the regex
    assert extract_gsm8k_number("Final Answer:-5", first=True) == "-5"
    assert extract_gsm8k_number("final answer: 5", first=True) is None  # case-sensitive


def test_strip_tags():
    assert strip_tags("a<Parallel><Path>b</Path></Parallel>\n<Summary>c</Summary>") == "ab\nc"
