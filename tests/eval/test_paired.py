"""Paired statistics of a grid on hand-computed cases (eval.paired)."""

from __future__ import annotations

import numpy as np
import pytest

from parallel_r1.eval.paired import (
    crossed_bootstrap,
    crossed_resamples,
    early_late_shift,
    is_resolved,
    paired_delta,
    variance_components,
)


def test_constant_matrix_has_a_zero_width_interval():
    fig = crossed_bootstrap([np.full((3, 5), 0.4)])
    assert fig == pytest.approx({"value": 0.4, "low": 0.4, "high": 0.4})


def test_two_problems_one_seed_gives_the_exact_bootstrap_quantiles():
    # One seed, problems [0, 1]: a resample's mean is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles are 0 and 1 and the value is 1/2.
    fig = crossed_bootstrap([np.array([[0.0, 1.0]])], num_resamples=4000)
    assert fig == {"value": 0.5, "low": 0.0, "high": 1.0}
    # The same on the seed axis: two seeds, one problem.
    assert crossed_bootstrap([np.array([[0.0], [1.0]])], num_resamples=4000) == fig


def test_bootstrap_variance_matches_the_hand_formula_for_additive_cells():
    # x[s, p] = a_s + b_p. Seeds and problems are drawn independently, so the variance of a
    # resample's mean is popvar(a)/S + popvar(b)/P = 0.25/2 + 2/3 (a = [0, 1], b = [0, 0, 3]).
    a, b = np.array([0.0, 1.0]), np.array([0.0, 0.0, 3.0])
    x = a[:, None] + b[None, :]
    stats = crossed_resamples([x], num_resamples=40000)
    assert stats.mean() == pytest.approx(1.5, abs=0.02)
    assert stats.var() == pytest.approx(0.25 / 2 + 2 / 3, rel=0.03)
    assert crossed_bootstrap([x])["value"] == 1.5


def test_avg_over_benchmarks_shares_the_seed_draw():
    # Two benchmarks whose cells depend only on the seed, in opposite directions: the Avg is
    # constant over seeds, so a shared seed draw gives a zero-width interval (independent draws
    # per benchmark would not).
    up = np.array([[0.0, 0.0], [1.0, 1.0]])
    down = 1.0 - up
    fig = crossed_bootstrap([up, down])
    assert fig == pytest.approx({"value": 0.5, "low": 0.5, "high": 0.5})


def test_paired_delta_of_a_constant_shift_is_exact_and_pairing_removes_shared_noise():
    rng = np.random.default_rng(1)
    base = rng.random((3, 40)) + np.array([[0.0], [0.3], [-0.3]])  # big seed and problem effects
    arm = base + 0.1
    assert paired_delta([arm], [base]) == pytest.approx({"value": 0.1, "low": 0.1, "high": 0.1})
    noisy = base + 0.1 + 0.01 * rng.standard_normal(base.shape)
    d = paired_delta([noisy], [base])
    assert d["low"] > 0 and is_resolved(d)
    a, b = crossed_bootstrap([noisy]), crossed_bootstrap([base])
    assert d["high"] - d["low"] < 0.2 * (a["high"] - a["low"])  # unpaired would overlap
    assert a["low"] < b["high"]


def test_paired_delta_refuses_unpaired_shapes_and_missing_cells():
    with pytest.raises(ValueError, match="cannot pair"):
        paired_delta([np.zeros((3, 4))], [np.zeros((3, 5))])
    with pytest.raises(ValueError, match="missing"):
        crossed_bootstrap([np.array([[0.0, np.nan]])])
    with pytest.raises(ValueError, match="seeds"):
        crossed_bootstrap([np.zeros((2, 3)), np.zeros((3, 3))])


def test_variance_components_by_hand():
    # Additive cells, a = [0, 1], b = [0, 0, 3]: MS_seed = 3 * 0.5 = 1.5, MS_problem = 2 * 6 / 2
    # = 6, no residual; var_seed = 1.5 / 3 = 0.5 (the sample variance of a), var_problem = 6 / 2
    # = 3 (of b); se = sqrt(0.5 / 2 + 3 / 3) = sqrt(1.25).
    x = np.array([0.0, 1.0])[:, None] + np.array([0.0, 0.0, 3.0])[None, :]
    out = variance_components(x)
    assert out == pytest.approx({"var_seed": 0.5, "var_problem": 3.0, "var_resid": 0.0,
                                 "se": np.sqrt(1.25)})
    # Pure interaction: row and column means are equal, residuals +-0.5: MS_resid = 1,
    # var_seed = var_problem = max((0 - 1) / 2, 0) = 0, se = sqrt(1 / 4).
    out = variance_components(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert out == pytest.approx({"var_seed": 0.0, "var_problem": 0.0, "var_resid": 1.0,
                                 "se": 0.5})
    with pytest.raises(ValueError):
        variance_components(np.zeros((1, 5)))


def test_early_late_shift_by_hand():
    # Seed 1: early steps (sum, count) (0.3, 2), (0.3, 2) -> 0.15; late (1.6, 2) -> 0.8.
    # Seed 2: early (0.45, 3) -> 0.15; late (1.6, 2), (0.0, 0) (a step without blocks) -> 0.8.
    # Pooled: early 1.05 / 7 = 0.15, late 3.2 / 4 = 0.8; every resample gives the same.
    out = early_late_shift([([(0.3, 2), (0.3, 2)], [(1.6, 2)]),
                            ([(0.45, 3)], [(1.6, 2), (0.0, 0)])])
    assert out["early"] == pytest.approx({"value": 0.15, "low": 0.15, "high": 0.15})
    assert out["late"] == pytest.approx({"value": 0.8, "low": 0.8, "high": 0.8})
    assert out["delta"]["value"] == pytest.approx(0.65) and is_resolved(out["delta"])
    # Two seeds that disagree: the interval spans both seeds' values.
    out = early_late_shift([([(1, 1)], [(0, 1)]), ([(0, 1)], [(1, 1)])])
    assert out["delta"]["value"] == 0.0 and out["delta"]["low"] == -1 and out["delta"]["high"] == 1
    assert not is_resolved(out["delta"])
    empty = early_late_shift([([], [])])
    assert np.isnan(empty["early"]["value"])


def test_reruns_give_identical_bounds():
    x = np.random.default_rng(0).random((3, 20))
    assert crossed_bootstrap([x]) == crossed_bootstrap([x])


def test_a_bound_that_is_zero_up_to_rounding_is_not_a_gap():
    # The lower bound of a Pass@k delta came out as 2.9e-17 (a sum of 0s and 1/300s): 0, no gap.
    assert not is_resolved({"value": 0.11, "low": 2.938187887435736e-17, "high": 0.22})
    assert not is_resolved({"value": -0.1, "low": -0.2, "high": -1e-17})
    assert is_resolved({"value": 0.01, "low": 1 / 300, "high": 0.02})
    assert is_resolved({"value": -0.01, "low": -0.02, "high": -1 / 300})
