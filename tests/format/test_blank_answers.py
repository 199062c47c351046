"""Issue #11 review item 7: an answer that says nothing (`**`, `$$`, `\\boxed{}`, `.`, `\\text{}`)
is no answer everywhere — the grader reads the label before it, the rewards and eval follow, and
`check-format` reports `missing_answer` exactly when no label or box has an answer."""

from __future__ import annotations

import pytest

from parallel_r1.format.answer import find_answer, is_blank_answer
from parallel_r1.format.validate import validate

BLANKS = ["**", "$$", "\\boxed{}", ".", "\\text{}", "\\text{ }", "$\\boxed{}$", "` `", "~~18~~",
          "\\(\\)", "**.**", "\\mathrm{}"]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_last_line_gives_way_to_the_label_before(blank):
    from parallel_r1.rewards import build_reward
    from parallel_r1.rewards.grading import grade_response_detail

    text = f"Work.\nFinal Answer: 18\nDone.\nFinal Answer: {blank}"
    assert is_blank_answer(blank)
    assert find_answer(text) == "18"
    assert grade_response_detail(text, "18").correct
    assert build_reward("accuracy_reward")([text], ["18"], 1)[0][0] == 1.0
    assert not any(i.code == "missing_answer" for i in validate(text, "strict"))


@pytest.mark.parametrize("blank", BLANKS)
def test_only_blank_answers_is_missing_answer(blank):
    from parallel_r1.rewards.grading import grade_response_detail

    text = f"Work.\nFinal Answer: {blank}"
    assert find_answer(text) is None
    assert grade_response_detail(text, "18").pred is None
    assert any(i.code == "missing_answer" for i in validate(text, "strict"))


@pytest.mark.parametrize("text, answer", [
    ("Work \\boxed{18} then \\boxed{}", "18"),
    ("Final Answer:\n$$\n\\boxed{18}\n$$", "\\boxed{18}"),
    ("Final Answer: $$\n18", "18"),
    ("Final Answer: \\{\\}", "\\{\\}"),
    ("Final Answer: the", "the"),
])
def test_answers_that_say_something_are_read(text, answer):
    assert find_answer(text) == answer
    assert not any(i.code == "missing_answer" for i in validate(text, "strict"))
