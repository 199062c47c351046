"""Where answers are read from (the location half of the answer contract), in linear time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.format.answer import (
    box_spans,
    final_answer_line,
    find_answer,
    last_box,
    readable_text,
)

BLOCK = "<Parallel><Path>p1</Path><Path>p2</Path></Parallel>\n<Summary>sum</Summary>"


def test_readable_text_is_main_text_and_summaries():
    assert readable_text("a " + BLOCK + " b") == "a \nsum\n b"
    assert readable_text("a <Parallel><Path>p1</Path><Path>cut") == "a "
    assert readable_text("a <Parallel>gap<Path>p</Path><Path>q</Path></Parallel>") == "a "


@pytest.mark.parametrize("text, answer", [
    ("Final Answer: 18", "18"), ("final answer : 18\n", "18"), ("**Final Answer**: 18", "18"),
    ("**Final Answer:** 18", "** 18"), ("### Final Answer: 18", "18"), ("Final Answer:\n\n18", "18"),
    ("**Final Answer**\n\n18", "18"), ("## Final Answer\n18", "18"),
    ("Final Answer: 16\nthen\nFinal Answer: 18", "18"), ("Final Answer: 18\nFinal Answer:", "18"),
    ("Final Answer:\nFinal Answer: 18", "18"), ("the final answer is 18", None),
    ("Semifinal answer: 3", None), ("Final Answer:   ", None), ("", None),
])
def test_final_answer_line(text, answer):
    assert final_answer_line(text) == answer


def test_boxes():
    assert last_box("a \\boxed{1} b \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_box("\\boxed{3} then \\boxed{4") == "3"
    assert last_box("roots $\\boxed{2}$, $\\boxed{3}$") == "2, 3"
    assert last_box("\\boxed{16}. Wait: \\boxed{18}") == "18"
    assert last_box("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"
    assert last_box("no box") is None and last_box("\\boxed{") is None
    assert box_spans("\\boxed{{a}{b}}") == [(7, 13)]


def test_find_answer_readings():
    in_path = "Go " + BLOCK.replace("p1", "Final Answer: 5\n")
    assert find_answer(in_path, "strict") is None
    assert find_answer(in_path, "paper") == "5"
    # The paper strips the tags first, so text on both sides of a tag runs together.
    assert find_answer("Final Answer: 5</Path><Path>x", "paper") == "5x"
    assert find_answer("Final Answer: 7\n" + "x" * 400, "paper") is None  # the paper's window
    assert find_answer("so \\boxed{9}", "strict") == "9"
    assert find_answer("so \\boxed{9}", "paper") is None
    with pytest.raises(ValueError, match="strict, paper"):
        find_answer("x", "lenient")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<Parallel>", "</Parallel>", "<Path>", "</Path>", "<Summary>",
                                 "</Summary>", "Final Answer: 1", "\\boxed{2}", "\n", "x", "{",
                                 "}", "**"]), max_size=12).map("".join))
def test_readings_never_raise(text):
    for reading in ("strict", "paper"):
        answer = find_answer(text, reading)
        assert answer is None or answer.strip()
