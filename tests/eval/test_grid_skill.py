"""Task-independent design checks on hand-written responses: equation accuracy and block use."""

from __future__ import annotations

import pytest

from parallel_r1.eval.grid_skill import block_use, equation_accuracy, equations


def _block(*paths: str, summary: str | None = None) -> str:
    body = "".join(f"<Path>{p}</Path>" for p in paths)
    return f"<Parallel>{body}</Parallel>" + (f"<Summary>{summary}</Summary>" if summary is not None
                                             else "")


@pytest.mark.parametrize(("text", "expected"), [
    ("3+4=7", [("3+4=7", True)]),
    ("so 3 + 4 = 8 apples", [("3 + 4=8", False)]),
    ("2*3+1=7 and 2+3*4=20", [("2*3+1=7", True), ("2+3*4=20", False)]),  # precedence
    ("3*9+9=27+9=36", [("3*9+9=27+9", True), ("27+9=36", True)]),     # a chain: two equations
    ("3*9+9=27+9=35", [("3*9+9=27+9", True), ("27+9=35", False)]),
    ("5-8=-3, 7/2=3.5, 9÷3=3, 4×5=20", [("5-8=-3", True), ("7/2=3.5", True),
                                         ("9÷3=3", True), ("4×5=20", True)]),
    ("7/2=3", [("7/2=3", False)]),                                      # no integer division
    ("6/0=1", [("6/0=1", False)]),                                      # x / 0 is never right
    ("x=5, 12=12, step 2: total 14", []),                               # no operator, no equation
    ("x1+2=3", []),                                                     # not a number's start
    ("<Path>3+4=7</Path><Path>2+5=7</Path>", [("3+4=7", True), ("2+5=7", True)]),
])
def test_equations_are_read_and_checked_by_hand(text, expected):
    assert equations(text) == expected


def test_equation_accuracy_pools_the_responses():
    assert equation_accuracy(["1+1=2. 2+2=5", "3*3=9<|im_end|>", "no arithmetic"]) == (
        pytest.approx(2 / 3), 3)
    assert equation_accuracy(["Final Answer: 4"]) == (None, 0)


def test_block_use_by_hand():
    explore_both = "Try. " + _block("2+3=5", "2*3=6", summary="5 it is") + " Final Answer: 5"
    explore_same = "Try. " + _block("2+3=5", "3+2=5", summary="so 4") + " Final Answer: 4"
    # the text hesitates between 12 and 11; the paths re-derive the stated 12 (verification)
    verify_fix = "3*4=12 or 3*4=11? " + _block("3*4=12", "4*3=12", summary="12") + " 12"
    verify_keep = "2+3=5. " + _block("5", "1+4=5", summary="still 5")
    one_number = "Go " + _block("2+3=5", "add them", summary="5")
    no_summary = "Go " + _block("1+1=2", "2*1=2")
    uses = block_use([explore_both, explore_same, verify_fix, verify_keep, one_number,
                      no_summary, "no block 1+1=2"])
    assert uses["num_blocks"] == 6
    # blocks where two paths reach a result: all but one_number; they differ in explore_both
    assert uses["paths_differ"] == pytest.approx(1 / 5)
    # of the 5 blocks with a summary, all but explore_same's "4" state a path's result
    assert uses["summary_uses_path"] == pytest.approx(4 / 5)
    # verification blocks: verify_fix (11 was last before it, its summary says 12: changed) and
    # verify_keep (5 before, 5 after)
    assert uses["num_verification"] == 2 and uses["verification_changes"] == 0.5
    assert block_use(["plain text"]) == {"num_blocks": 0, "num_verification": 0,
                                         "paths_differ": None, "summary_uses_path": None,
                                         "verification_changes": None}
