"""Statistics that count seeds: the training seed is the unit of a grid's comparisons.

Two arms trained under the same seed share their initial model, data order and evaluation
samples' seeds, so arm - baseline is paired by seed. What varies between seeds is the training
run itself (an arm x seed effect: a run that happens to learn a little more), and per-sample
noise only adds to each seed's figure. The per-seed paired mean d_s (arm minus baseline, averaged
over the problems and samples of seed s) therefore carries every source of variance once, and
d_1 .. d_S are independent: a t-interval on S - 1 degrees of freedom is exact for normal d_s and
close for averages over many problems. `eval.paired.crossed_bootstrap` instead resamples seeds
and problems of the cell matrix: it over-counts the cell noise and shrinks the seed-to-seed part
by (S-1)/S while using normal-ish quantiles where t_{S-1} is needed, so with 3 seeds and arms
that vary by seed its nominal 95% interval misses far more often than 5% (the simulation in
`tests/eval/test_seed_stats.py`; figures in `bench/results/seed_stats_coverage.md`).

Multiple comparisons: `holm` (Holm 1979, step-down, strong family-wise error control) over the
comparisons the grid file names as primary. `min_detectable_effect` is the gap a two-sided paired
t-test on S seeds would find with the given power, from the observed seed-to-seed SD (noncentral
t, exact for normal d_s).

S >= 2 seeds whose differences agree exactly (SD 0; in practice below `SD_ZERO_TOL`, the rounding
of equal differences) give no seed-to-seed variance to test against: the interval is the point,
p is None and the MDE is None. Such a comparison is reported, never tested (`is_sd_zero`,
`SD_ZERO`). numpy, scipy and statsmodels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_INTERVAL = "1 seed: no interval"
SD_ZERO = "the seeds agree exactly (SD 0): no seed-to-seed variance to test against"
# an SD at or below this (in the differences' units, fractions here) is the rounding of
# equal differences (0.5 - 0.3 vs 0.6 - 0.4), not variance
SD_ZERO_TOL = 1e-9


def seed_interval(diffs: Sequence[float], *, level: float = 0.95) -> dict[str, float | None]:
    """Mean of per-seed paired differences with a t-interval on S - 1 degrees of freedom.

    Args:
        diffs: [S] one paired difference per seed (arm minus baseline, in the figure's units).
        level: coverage of the interval.

    Returns:
        {"value", "low", "high", "p", "sd", "num_seeds"}: the mean, the interval, the two-sided
        p-value of a one-sample t-test of mean 0, the seeds' sample SD (ddof 1). With one seed
        low, high, p and sd are None (no interval can be formed); with S >= 2 seeds that all
        agree (`is_sd_zero`) the interval is the point and p is None (nothing to test).

    Raises:
        ValueError: no seeds, or a NaN difference.
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 1 or d.size == 0 or np.isnan(d).any():
        raise ValueError(f"need one finite difference per seed, got {diffs!r}")
    if d.size == 1:
        return {"value": float(d[0]), "low": None, "high": None, "p": None, "sd": None,
                "num_seeds": 1}
    value, low, high, p, sd = (float(x[0]) for x in seed_intervals(d[None, :], level=level))
    return {"value": value, "low": low, "high": high, "p": None if np.isnan(p) else p, "sd": sd,
            "num_seeds": int(d.size)}


def is_sd_zero(fig: dict) -> bool:
    """Whether a `seed_interval` result has S >= 2 seeds whose differences agree exactly
    (sd <= `SD_ZERO_TOL`): shown, but not a test (no p-value, no MDE)."""
    return fig["num_seeds"] >= 2 and fig["sd"] is not None and fig["sd"] <= SD_ZERO_TOL


def seed_intervals(diffs: np.ndarray, *, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """`seed_interval` of many comparisons at once (simulations).

    Args:
        diffs: [N, S] per-seed paired differences of N comparisons, S >= 2 seeds each.

    Returns:
        (value, low, high, p, sd), each [N]; p is NaN where sd <= `SD_ZERO_TOL`.

    Raises:
        ValueError: fewer than 2 seeds.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    num_seeds = d.shape[-1]
    if d.ndim != 2 or num_seeds < 2:
        raise ValueError(f"need [N, S >= 2] differences, got shape {d.shape}")
    value, sd = d.mean(axis=1), d.std(axis=1, ddof=1)
    se = sd / np.sqrt(num_seeds)
    half = stats.t.ppf((1 + level) / 2, num_seeds - 1) * se
    tested = sd > SD_ZERO_TOL
    tstat = np.abs(value) / np.where(tested, se, 1.0)  # no division by a zero se
    p = np.where(tested, 2 * stats.t.sf(tstat, num_seeds - 1), np.nan)
    return value, value - half, value + half, p, sd


def holm(pvalues: Sequence[float], *, alpha: float = 0.05) -> list[dict[str, float | bool]]:
    """Holm's step-down correction of a family of p-values (statsmodels' `multipletests`).

    Args:
        pvalues: [m] two-sided p-values of the family (the primary comparisons).
        alpha: family-wise error rate.

    Returns:
        [m] {"p_holm": adjusted p (monotone, capped at 1), "significant": p_holm <= alpha}, in
        the input order.

    Raises:
        ValueError: a p-value outside [0, 1] or NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.size and (np.isnan(p).any() or (p < 0).any() or (p > 1).any()):
        raise ValueError(f"p-values must lie in [0, 1], got {list(pvalues)}")
    if not p.size:
        return []
    from statsmodels.stats.multitest import multipletests

    significant, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return [{"p_holm": float(a), "significant": bool(s)} for a, s in zip(adjusted, significant)]


def min_detectable_effect(sd: float | None, num_seeds: int, *, alpha: float = 0.05,
                          power: float = 0.8) -> float | None:
    """Smallest true mean difference a two-sided paired t-test on `num_seeds` seeds detects
    with probability `power` at level `alpha`, given the seed-to-seed SD of the differences.

    Solves P(|T| > t_{1-alpha/2, S-1}) = power for T ~ noncentral t(S - 1, delta sqrt(S) / sd).

    Returns:
        the effect in the units of `sd`; None with one seed, an unknown sd, or sd 0
        (<= `SD_ZERO_TOL`: no variance to scale by, which is not a resolution of 0).
    """
    from scipy import optimize, stats

    if sd is None or num_seeds < 2 or not np.isfinite(sd) or sd <= SD_ZERO_TOL:
        return None
    df = num_seeds - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def gap(delta: float) -> float:
        nc = delta * np.sqrt(num_seeds) / sd
        # the far tail underflows to NaN in scipy's nct for large nc (df 1): it is ~0 there
        lower = float(np.nan_to_num(stats.nct.cdf(-crit, df, nc), nan=0.0))
        return float(stats.nct.sf(crit, df, nc)) + lower - power

    high = sd
    while gap(high) < 0:
        high *= 2
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-10 * sd))


def simulate_arms(rng: np.random.Generator, *, num_reps: int, num_seeds: int,
                  num_problems: int = 100, samples: int = 4, seed_sd: float = 0.4,
                  effect: float = 0.0, base_logit: float = -1.5, problem_sd: float = 1.5
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulated grids of two arms for coverage checks: Mean@k cells with per-sample noise and
    an arm x seed effect on the logit scale.

    Problem p has logit b_p ~ N(base_logit, problem_sd) (shared by both arms; drawn per rep);
    each (arm, seed) run gets u ~ N(0, seed_sd); a cell is Binomial(samples, sigmoid(b_p + u +
    effect [arm only])) / samples.

    Returns:
        (arm [R, S, P], base [R, S, P], truth [R]): truth is the expected arm - base Mean@k on
        each rep's problems, averaged over the seed effect (Gauss-Hermite quadrature, 40 nodes).
    """
    b = rng.normal(base_logit, problem_sd, (num_reps, 1, num_problems))
    u = rng.normal(0.0, seed_sd, (2, num_reps, num_seeds, 1))

    def cells(logit: np.ndarray) -> np.ndarray:
        return rng.binomial(samples, 1 / (1 + np.exp(-logit))) / samples

    arm, base = cells(b + u[0] + effect), cells(b + u[1])
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)  # E f(Z), Z ~ N(0, 1)
    weights = weights / weights.sum()

    def expected(shift: float) -> np.ndarray:  # [R]: mean over problems of E_u sigmoid
        z = b[:, 0, :, None] + seed_sd * nodes + shift
        return ((1 / (1 + np.exp(-z))) @ weights).mean(axis=1)

    return arm, base, expected(effect) - expected(0.0)
