"""Evaluation metrics: pass@k against brute force, the paper's bootstrap, maj@k, CIs, structure."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallel_r1.eval.metrics import (
    block_positions,
    bootstrap_best_at_k,
    bootstrap_best_at_k_mean,
    bootstrap_ci,
    maj_at_k,
    majority_vote,
    mean_at_k,
    parallel_ratio,
    pass_at_k,
    pass_at_k_mean,
    structure_stats,
)

BLOCK = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"


def _brute_pass_at_k(grades, k):
    subsets = list(itertools.combinations(grades, k))
    return sum(any(s) for s in subsets) / len(subsets)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=9), st.data())
def test_pass_at_k_equals_enumeration(grades, data):
    k = data.draw(st.integers(min_value=1, max_value=len(grades)))
    assert pass_at_k(len(grades), sum(grades), k) == pytest.approx(_brute_pass_at_k(grades, k))


def test_pass_at_k_values():
    assert pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(100, 5, 10) == pytest.approx(1 - math.comb(95, 10) / math.comb(100, 10))
    assert 0.0 < pass_at_k(10_000, 1, 2) < 1.0  # no overflow with big n
    for bad in [(4, 1, 5), (4, 5, 2), (4, 1, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_mean_and_pass_over_problems():
    grades = [[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert mean_at_k(grades) == pytest.approx((0.25 + 1 + 0) / 3)
    assert pass_at_k_mean(grades, 4) == pytest.approx(2 / 3)
    assert pass_at_k_mean(grades, 1) == pytest.approx(mean_at_k(grades))
    with pytest.raises(ValueError):
        mean_at_k([])
    with pytest.raises(ValueError, match="problem 1"):
        mean_at_k([[1], []])


def test_paper_bootstrap_runs_low():
    one_right = [1.0] + [0.0] * 15
    mean, std = bootstrap_best_at_k(one_right, 16)
    assert mean == pytest.approx(1 - (15 / 16) ** 16, abs=0.05)  # ~0.644, exact pass@16 is 1.0
    assert std > 0
    assert bootstrap_best_at_k(one_right, 16) == (mean, std)  # seeded: reproducible
    assert bootstrap_best_at_k(one_right, 16, seed=1) != (mean, std)
    assert bootstrap_best_at_k_mean([[1.0] * 16, [0.0] * 16], 16) == pytest.approx(0.5)


def test_paper_bootstrap_matches_verl_draws():
    values = [1.0, 0.0, 0.0, 1.0, 0.0]
    np.random.seed(42)  # verl seeds the global generator, then calls np.random.choice
    maxes = [max(values[i] for i in np.random.choice(len(values), size=3, replace=True))
             for _ in range(1000)]
    assert bootstrap_best_at_k(values, 3)[0] == pytest.approx(float(np.mean(maxes)))


def test_majority_vote():
    assert majority_vote(["3", "4", "4", "3"]) == 0  # tie: the answer seen first
    assert majority_vote([None, "4", " 4", "3"]) == 1  # no-answer does not vote; stripped
    assert majority_vote([None, None]) is None
    assert majority_vote(["18", "18.0", "18.0"], key=lambda p: float(p)) == 0
    preds = [["1", "2", "2"], [None, None, "5"], [None, None, None]]
    correct = [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert maj_at_k(preds, correct) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        maj_at_k(preds[:2], correct)


def test_bootstrap_ci():
    values = [0.0, 0.25, 0.5, 1.0, 0.75] * 6
    point, low, high = bootstrap_ci(values)
    assert point == pytest.approx(np.mean(values))
    assert low < point < high
    assert bootstrap_ci(values) == (point, low, high)
    _, low90, high90 = bootstrap_ci(values, confidence=0.9)
    assert low <= low90 and high90 <= high
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], confidence=1.0)


def test_parallel_ratio_and_structure():
    bad = "<Parallel><Path>a</Path></Parallel>\n<Summary>s</Summary>"
    responses = ["plain", BLOCK + "x", bad, "<Parallel><Path>a</Path><Path>b</Path></Parallel>"]
    assert parallel_ratio(responses) == 0.25
    assert parallel_ratio(responses, require_valid=False) == 0.75
    assert parallel_ratio([]) == 0.0
    text = "x" * 10 + BLOCK
    assert block_positions(text) == [pytest.approx(10 / len(text))]
    assert block_positions("") == []
    stats = structure_stats(["plain", BLOCK + BLOCK, bad])
    assert stats["blocks_per_response"] == 1.0
    assert stats["paths_per_response"] == pytest.approx(5 / 3)
    assert stats["paths_per_block"] == pytest.approx(5 / 3)
    assert math.isnan(structure_stats(["plain"])["block_position"])


def test_votes_group_answers_the_grader_finds_equal():
    assert majority_vote(["0.25", "0.5", "1/2", "\\frac12", "0.25"]) == 1  # 3 halves beat 2
    assert majority_vote(["0.25", "0.5", "1/2", "\\frac12", "0.25"], grader=None) == 0
    assert majority_vote(["1/2", "0.25", "0.25", "0.5"], grader="paper") == 1  # strings differ
    assert majority_vote([None, "18.", "18", "17", "17"]) == 1  # 18. and 18 are one answer
    preds = [["0.5", "\\frac{1}{2}", "1/2", "0.25", "0.25"]]
    assert maj_at_k(preds, [[1, 1, 1, 0, 0]]) == 1.0  # issue #11 case 7
