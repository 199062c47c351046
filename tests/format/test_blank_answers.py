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


# ---- review item 10: invisible characters are no content in strict mode -------------------------

@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\u200c", "\ufeff", "\u200d",
                                       "\u200b\u200d \n\ufeff", "\u3164", "\u00ad"])
def test_invisible_paths_and_summaries_are_empty_in_strict_mode(invisible):
    from parallel_r1.format.trace import has_content
    from parallel_r1.rewards import REWARDS

    assert not has_content(invisible)
    text = (f"S.\n<Parallel><Path>{invisible}</Path><Path>{invisible}</Path></Parallel>\n"
            f"<Summary>{invisible}</Summary>\nFinal Answer: 18")
    codes = {i.code for i in validate(text, "strict")}
    assert {"empty_path", "empty_summary"} <= codes
    reward, _ = REWARDS.get("accuracy_add_parallel_reward")(text, "18", grader="math-verify")
    assert reward == 1.0  # right, but no parallel bonus
    full = text.replace(f"<Path>{invisible}</Path>", "<Path>a</Path>").replace(
        f"<Summary>{invisible}</Summary>", "<Summary>s</Summary>")
    assert validate(full, "strict") == []
    assert REWARDS.get("accuracy_add_parallel_reward")(full, "18", grader="math-verify")[0] > 1.0


def test_visible_text_with_invisible_characters_is_content():
    from parallel_r1.format.trace import has_content

    assert has_content("\u200b18\u200b") and has_content("x") and not has_content(" \t\n")


@pytest.mark.parametrize("text, gold, right", [
    ("6+6=12\n<Summary>\nBoth check out:<Path>\nFinal Answer: 2", "2", None),  # path in a summary
    ("Try.\n<Path>\nFinal Answer: 3", "3", None),  # a path opened outside any block
    ("A <Path>\nFinal Answer: 3\n</Path>\nFinal Answer: 4", "4", "4"),  # after it closes: read
])
def test_text_of_a_stray_path_is_never_read(text, gold, right):
    """The contract reads no path: one opened outside a block (or inside a stray summary) hides
    its text until `</Path>`; grading, the reward and check-format agree."""
    from parallel_r1.rewards import build_reward
    from parallel_r1.rewards.grading import grade_response_detail

    assert find_answer(text) == right
    assert grade_response_detail(text, gold).correct == (right is not None)
    assert build_reward("accuracy_reward")([text], [gold], 1)[0][0] == (1.0 if right else -1.0)
    missing = any(i.code == "missing_answer" for i in validate(text, "strict"))
    assert missing == (right is None)
