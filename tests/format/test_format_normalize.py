"""normalize: tag layout, answers, edit records, and the v2 teacher -> trajectory reproduction."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parallel_r1.format import (
    TAGS,
    Edit,
    compare_normalized,
    normalize,
    normalize_answer,
    parse,
    render,
)
from parallel_r1.format.normalize import classify_difference

RAW = ("Go.\n<Parallel>\n<Path>\na\n</Path>\n\n<Path> b</Path>  \n</Parallel>\n\n"
       "<Summary>\ns\n</Summary>"
       "\n\nFinal Answer: $1,600.00")
CANON = ("Go.\n<Parallel><Path>\na\n</Path><Path> b</Path></Parallel>\n\n<Summary>\ns\n</Summary>"
         "\n\nFinal Answer: 1600")


def test_normalize_layout_and_answer():
    out, edits = normalize(RAW)
    assert out == CANON
    answer_code = "answer:dollar+thousands+zero_fraction"
    assert [e.code for e in edits] == ["tag_whitespace"] * 3 + [answer_code]
    assert edits[0] == Edit("tag_whitespace", RAW.index("<Parallel>") + len("<Parallel>"), "\n", "")
    assert edits[-1].old == "$1,600.00" and edits[-1].new == "1600"
    assert RAW[edits[-1].offset:].startswith("$1,600.00")


def test_canonical_text_is_a_fixed_point():
    assert normalize(CANON) == (CANON, [])


def test_text_gaps_and_unclosed_tail_are_kept():
    text = "<Parallel>\nFirst, <Path>a</Path>\n<Path>b</Path>\n"
    out, edits = normalize(text)
    # "\nFirst, " has words; the trailing "\n" of the unclosed block is not between two tags.
    assert out == "<Parallel>\nFirst, <Path>a</Path><Path>b</Path>\n"
    assert [e.offset for e in edits] == [text.index("</Path>\n") + len("</Path>")]


def test_tag_spelling():
    out, edits = normalize("<parallel><PATH>a</ path><Path>b</Path></Parallel><summary>s</Summary>")
    assert out == "<Parallel><Path>a</Path><Path>b</Path></Parallel><Summary>s</Summary>"
    assert [e.code for e in edits] == ["tag_spelling"] * 4


@pytest.mark.parametrize("value, want, rules", [
    ("$4", "4", ("dollar",)),
    ("36.00", "36", ("zero_fraction",)),
    ("$1600.", "1600", ("trailing_period", "dollar")),
    ("45,500", "45500", ("thousands",)),
    ("-$5", "-5", ("dollar",)),
    ("2.50", "2.50", ()),
    ("19", "19", ()),
    ("$5 per hour", "$5 per hour", ()),
    ("x = 3.", "x = 3.", ()),
    ("1,2", "1,2", ()),
])
def test_normalize_answer(value, want, rules):
    assert normalize_answer(value) == (want, rules)


def test_only_last_answer_line_changes():
    text = "Final Answer: $3\nmore\nFinal Answer: $4"
    assert normalize(text)[0] == "Final Answer: $3\nmore\nFinal Answer: 4"


def test_classify_difference():
    join = classify_difference("</Parallel>\n\n<Summary>", "</Parallel>\n<Summary>")
    assert join == "join_whitespace"
    assert classify_difference("a b", "ab") == "whitespace"
    assert classify_difference("x\nFinal Answer: 3", "x\nFinal Answer: 4") == "answer"
    assert classify_difference("x", "y") == "other"


_PIECES = st.sampled_from([*TAGS, "a", " ", "\n", "\n\n", "Final Answer: $1,000.00", "<path>"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
@example("<Parallel><path><path><Parallel></Path></Parallel></Path>")  # a respelled tag closes
def test_normalize_is_idempotent_and_never_raises(text):  # a path: a second pass respelled more
    once, _ = normalize(text)
    assert normalize(once) == (once, [])
    assert render(parse(once)) == once


def test_v2_teacher_text_reproduces_trajectory(v2_rows):
    report = compare_normalized(v2_rows, "teacher_output_raw", "trajectory")
    assert report.num_rows == 341 and report.num_exact == 341
    assert report.num_source_equal == 3
    assert report.edit_kinds[("tag_whitespace",)] == 290
    with_answer = sum(n for kinds, n in report.edit_kinds.items()
                      if any(k.startswith("answer") for k in kinds))
    assert with_answer == 48


def test_comparison_in_valid_text_is_not_a_tag():
    # Issue #12 item 8: "< path >" in prose is a comparison, not a tag.
    valid = ("We compare a < path > b.\n<Parallel><Path>x</Path><Path>y</Path></Parallel>\n"
             "<Summary>s</Summary>\nFinal Answer: 4")
    assert normalize(valid) == (valid, [])
    assert normalize("We compare a < path > b.") == ("We compare a < path > b.", [])


def test_tag_variants_inside_paths_are_text():
    inside = "<Parallel><Path>the <parallel> tag</Path><Path>x</Path></Parallel><Summary>s</Summary>"
    assert normalize(inside)[0] == inside


def test_spaced_variants_that_pair_up_are_respelled():
    spaced = "< parallel >< path >a</ path >< path >b</ path ></ parallel >\n< summary >s</ summary >"
    out, edits = normalize(spaced)
    assert out == "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"
    assert len(edits) == 8
    # A spaced variant never pairs with an exact tag: "a < path > b</Path>" keeps its "<".
    mixed = "<Parallel><Path>a < path > b</Path><Path>c</Path></Parallel><Summary>s</Summary>"
    assert normalize(mixed)[0] == mixed
