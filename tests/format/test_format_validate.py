"""validate: every issue code of both modes, messages, unknown modes, and strict => paper."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.errors import ConfigError
from parallel_r1.format import TAGS, Issue, is_valid, validate

BLOCK = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"
GOOD = "Think. " + BLOCK + "\n\nFinal Answer: 4"


def codes(text: str, mode: str) -> list[str]:
    return [issue.code for issue in validate(text, mode)]


def test_good_text_valid_in_both_modes():
    assert validate(GOOD) == [] and is_valid(GOOD, "paper")
    assert is_valid("no blocks at all\nFinal Answer: 7")


def test_paper_accepts_what_strict_rejects():
    assert is_valid("no tags, no answer", "paper")
    assert is_valid("no tags, no answer", "strict") is False
    nested = ("<Parallel><Path><Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s</Path>"
              "<Path>c</Path></Parallel><Summary>t\nFinal Answer: 1")
    assert is_valid(nested, "paper")  # balanced nesting, unclosed summaries: fine for the paper
    assert {"nested_block", "tag_in_path", "unclosed_summary"} <= set(codes(nested, "strict"))
    text_join = "<Parallel><Path>a</Path><Path>b</Path></Parallel> words <Summary>s</Summary>"
    assert is_valid(text_join, "paper") and not is_valid(text_join + "\nFinal Answer: 1")


@pytest.mark.parametrize("text, code", [
    ("x</Path>", "unexpected_close_path"),
    ("<Parallel><Path>a</Parallel>", "unexpected_close_parallel"),
    ("<Parallel><Path>a</Path></Parallel><Summary>", "too_few_paths"),
    ("<Summary>", "unexpected_summary"),
    ("<Parallel><Path>a</Path><Path>b</Path>", "unclosed_tag"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel>", "missing_summary"),
    # The <Summary> is accepted, but the stray </Parallel> is counted in the text.
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s</Summary></Parallel>",
     "summary_count_mismatch"),
])
def test_paper_codes(text, code):
    assert code in codes(text, "paper")


def test_paper_final_checks_exact():
    assert codes("<Parallel><Path>a</Path><Path>b</Path></Parallel>", "paper") == [
        "missing_summary", "summary_count_mismatch"]
    # A new <Parallel> clears summary_expected; only the count check catches the first block.
    twice = BLOCK.replace("\n<Summary>s</Summary>", "") + BLOCK
    assert codes(twice, "paper") == ["summary_count_mismatch"]


@pytest.mark.parametrize("text, code", [
    ("</Summary>\nFinal Answer: 1", "stray_tag"),
    ("<Parallel><Summary><Path>a</Path><Path>b</Path></Parallel><Summary>s</Summary>", "stray_tag"),
    ("<Parallel><Path>a</Path><Parallel><Path>b</Path></Parallel><Summary>s</Summary>",
     "nested_block"),
    ("<Parallel><Path>a <Parallel> b</Path><Path>c</Path></Parallel><Summary>s</Summary>",
     "nested_block"),
    ("<Parallel><Path>a</Path> and <Path>b</Path></Parallel><Summary>s</Summary>",
     "text_between_paths"),
    ("<Parallel><Path>a</Path><Path>b", "unclosed_path"),
    ("<Parallel><Path>a <Summary></Path><Path>b</Path></Parallel><Summary>s</Summary>",
     "tag_in_path"),
    ("<Parallel><Path>a</Path><Path>b</Path>", "unclosed_block"),
    ("<Parallel><Path>a</Path></Parallel><Summary>s</Summary>", "too_few_paths"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel>\nFinal Answer: 1", "missing_summary"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s\nFinal Answer: 1",
     "unclosed_summary"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s<Path></Summary>",
     "tag_in_summary"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s</Summary>", "missing_answer"),
    ("the final answer is 3", "missing_answer"),  # no label: no colon
    ("<Parallel><Path></Path><Path>b</Path></Parallel><Summary>s</Summary>\nFinal Answer: 1",
     "empty_path"),
    ("<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary> \n</Summary>\nFinal Answer: 1",
     "empty_summary"),
])
def test_strict_codes(text, code):
    assert code in codes(text, "strict")


def test_answer_inside_path_does_not_count():
    text = "<Parallel><Path>Final Answer: 1</Path><Path>b</Path></Parallel><Summary>s</Summary>"
    assert codes(text, "strict") == ["missing_answer"]


def test_message_names_what_and_where():
    text = "line one\nab</Path>\nFinal Answer: 2"
    (issue,) = validate(text, "strict")
    assert issue == Issue("stray_tag", issue.message, 11)
    assert "</Path>" in issue.message and "line 2:3" in issue.message and "char 11" in issue.message
    (paper,) = validate(text, "paper")
    assert paper.offset == 11 and "line 2:3" in paper.message


def test_unknown_mode_lists_modes():
    with pytest.raises(ConfigError, match="known: paper, strict"):
        validate("x", "lenient")
    with pytest.raises(ConfigError):
        is_valid("x", mode="")


def _reference_paper(text: str) -> bool:
    """SPEC §1.3 restated as simply as possible, to compare verdicts with `check_paper`."""
    tokens = re.findall(r"</?Parallel>|</?Path>|</?Summary>", text)
    stack, counts, expect, summaries, ok = [], [], False, 0, True
    for tok in tokens:
        if tok in ("<Parallel>", "<Path>"):
            stack.append(tok)
            if tok == "<Parallel>":
                counts.append(0)
                expect = False
        elif tok == "</Path>":
            if stack[-1:] == ["<Path>"]:
                stack.pop()
                if counts:
                    counts[-1] += 1
            else:
                ok = False
        elif tok == "</Parallel>":
            if stack[-1:] == ["<Parallel>"]:
                stack.pop()
                ok = ok and counts.pop() >= 2
                expect = True
            else:
                ok = False
        elif tok == "<Summary>":
            ok, expect, summaries = ok and expect, False, summaries + 1
    return ok and not stack and not expect and summaries == text.count("</Parallel>")


# Whole blocks and paths among the pieces, so valid texts come up often too.
_PIECES = st.sampled_from([*TAGS, *TAGS, "a", " ", "\n", "\nFinal Answer: 3", BLOCK, BLOCK,
                           "<Path>p</Path>", "</Path><Path>"])
_MIXED = st.lists(_PIECES, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_MIXED)
def test_paper_matches_reference_and_strict_implies_paper(text):
    assert is_valid(text, "paper") == _reference_paper(text)
    if is_valid(text, "strict"):
        assert is_valid(text, "paper")
    for issue in validate(text, "strict") + validate(text, "paper"):
        assert 0 <= issue.offset <= len(text) and issue.message
