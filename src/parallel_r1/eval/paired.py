"""Statistics of a grid: intervals over seeds and problems, paired deltas, early-vs-late shifts.

A grid's result for one arm and benchmark is a matrix `x[s, p]` (seeds x problems) of per-cell
figures: a problem's Mean@k under one training seed, its Pass@k, or the share of its samples with
a block. Both axes are samples from what we want to generalise over (other seeds, other problems),
so the interval must resample both. `crossed_bootstrap` draws seeds and problems with replacement,
independently, in every resample (Owen's "pigeonhole" bootstrap for crossed random effects) and
takes percentile bounds. Resampling only problems would ignore seed-to-seed spread; resampling
(seed, problem) cells as if independent would ignore that cells share a seed and a problem.
Its known biases (Owen 2007, "The pigeonhole bootstrap"): it over-counts the cell-level noise
(wide side) and, like any bootstrap over S units, shrinks the seed-to-seed part by (S-1)/S (a
third too narrow with 3 seeds). `variance_components` states how much of the variance is
seed-to-seed, so a reader can see when the second matters; more seeds are the real fix.

A paired delta is the same bootstrap on `a[s, p] - b[s, p]`: arm and baseline matched by seed
(the same initial model and data order) and problem (the same held-out problem and sample seeds),
so what they share cancels. Pure numpy; deterministic for a given `seed`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000


def _ci(value: float, stats: np.ndarray, level: float) -> dict[str, float]:
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return {"value": float(value), "low": float(low), "high": float(high)}


def _check(matrices: Sequence[np.ndarray]) -> list[np.ndarray]:
    mats = [np.asarray(m, dtype=float) for m in matrices]
    if not mats or any(m.ndim != 2 or m.size == 0 for m in mats):
        raise ValueError("need one or more non-empty [seeds, problems] matrices")
    if len({m.shape[0] for m in mats}) != 1:
        raise ValueError(f"matrices disagree on the number of seeds: {[m.shape for m in mats]}")
    if any(np.isnan(m).any() for m in mats):
        raise ValueError("a matrix has missing cells (NaN): every seed needs every problem")
    return mats


def crossed_bootstrap(matrices: Sequence[np.ndarray], *, num_resamples: int = RESAMPLES,
                      seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean over matrices of each matrix's mean, with a seeds-and-problems bootstrap interval.

    Args:
        matrices: one [S, P_b] matrix per benchmark (same S, rows = the same seeds); one matrix
            gives that benchmark's mean, several give the paper's "Avg" over benchmarks.
        num_resamples: bootstrap resamples. seed: RNG seed (fixed: reruns give equal bounds).
        level: coverage of the interval.

    Returns:
        {"value", "low", "high"}: the statistic and its percentile interval. In each resample the
        seeds are drawn once (shared by every matrix) and each matrix's problems separately.

    Raises:
        ValueError: empty input, differing seed counts, or missing cells.
    """
    mats = _check(matrices)
    value = float(np.mean([m.mean() for m in mats]))
    return _ci(value, crossed_resamples(mats, num_resamples=num_resamples, seed=seed), level)


def crossed_resamples(matrices: Sequence[np.ndarray], *, num_resamples: int = RESAMPLES,
                      seed: int = 0) -> np.ndarray:
    """The bootstrap distribution behind `crossed_bootstrap`: one statistic per resample.

    Returns:
        [num_resamples] array of the mean over matrices of each resampled matrix's mean.
    """
    mats = _check(matrices)
    num_seeds = mats[0].shape[0]
    rng = np.random.default_rng(seed)
    w_seed = rng.multinomial(num_seeds, np.full(num_seeds, 1 / num_seeds),
                             size=num_resamples) / num_seeds  # [R, S]
    stats = np.zeros(num_resamples)  # [R]
    for m in mats:
        num_problems = m.shape[1]
        w_prob = rng.multinomial(num_problems, np.full(num_problems, 1 / num_problems),
                                 size=num_resamples) / num_problems  # [R, P]
        stats += np.einsum("rs,sp,rp->r", w_seed, m, w_prob)
    return stats / len(mats)


def paired_delta(arm: Sequence[np.ndarray], base: Sequence[np.ndarray], **kwargs: float
                 ) -> dict[str, float]:
    """`crossed_bootstrap` of arm - baseline, cell by cell (paired by seed and problem).

    Raises:
        ValueError: the shapes differ (the arms were not evaluated on the same seeds/problems).
    """
    arm, base = _check(arm), _check(base)
    if [m.shape for m in arm] != [m.shape for m in base]:
        raise ValueError(f"cannot pair {[m.shape for m in arm]} with {[m.shape for m in base]}")
    return crossed_bootstrap([a - b for a, b in zip(arm, base)], **kwargs)


def variance_components(matrix: np.ndarray) -> dict[str, float]:
    """Two-way random-effects ANOVA of one [S, P] matrix (one value per cell).

    Model x[s, p] = mu + a_s + b_p + e_sp. Mean squares MS_seed = P * var(row means),
    MS_problem = S * var(column means), MS_resid from the interaction; the moment estimates are
    var_seed = (MS_seed - MS_resid) / P, var_problem = (MS_problem - MS_resid) / S (clamped at 0)
    and var_resid = MS_resid; `se` is the standard error of the grand mean,
    sqrt(var_seed / S + var_problem / P + var_resid / (S P)).

    Raises:
        ValueError: fewer than 2 seeds or 2 problems.
    """
    x = np.asarray(matrix, dtype=float)
    num_seeds, num_problems = x.shape
    if num_seeds < 2 or num_problems < 2:
        raise ValueError(f"need >= 2 seeds and >= 2 problems, got {x.shape}")
    grand, rows, cols = x.mean(), x.mean(axis=1), x.mean(axis=0)
    ms_seed = num_problems * np.sum((rows - grand) ** 2) / (num_seeds - 1)
    ms_prob = num_seeds * np.sum((cols - grand) ** 2) / (num_problems - 1)
    resid = x - rows[:, None] - cols[None, :] + grand
    ms_resid = np.sum(resid ** 2) / ((num_seeds - 1) * (num_problems - 1))
    var_seed = max((ms_seed - ms_resid) / num_problems, 0.0)
    var_prob = max((ms_prob - ms_resid) / num_seeds, 0.0)
    se = np.sqrt(var_seed / num_seeds + var_prob / num_problems
                 + ms_resid / (num_seeds * num_problems))
    return {"var_seed": float(var_seed), "var_problem": float(var_prob),
            "var_resid": float(ms_resid), "se": float(se)}


def early_late_shift(per_seed: Sequence[tuple[Sequence[tuple[float, float]],
                                              Sequence[tuple[float, float]]]], *,
                     num_resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
                     ) -> dict[str, dict[str, float]]:
    """Early vs late figure of a training curve, over seeds, with a two-level bootstrap.

    Args:
        per_seed: per training seed, (early steps, late steps); each step is (sum, count), e.g.
            (sum of block positions, number of blocks) or (verification blocks, blocks). The
            figure of a set of steps is sum(sums) / sum(counts) (a ratio over blocks).

    Returns:
        {"early", "late", "delta"} each {"value", "low", "high"}; each resample draws seeds with
        replacement, then steps with replacement within each drawn seed's early and late parts
        (steps are the unit: the blocks of one step share a policy and a batch of prompts).
        Values are NaN where no block was counted.

    Raises:
        ValueError: no seeds.
    """
    if not per_seed:
        raise ValueError("no seeds")
    rng = np.random.default_rng(seed)
    parts = [[np.asarray(steps, dtype=float).reshape(-1, 2) for steps in pair] for pair in per_seed]

    def ratio(chosen: list[np.ndarray]) -> float:
        total = np.sum([c.sum(axis=0) for c in chosen], axis=0) if chosen else np.zeros(2)
        return float(total[0] / total[1]) if total[1] > 0 else float("nan")

    point = [ratio([p[i] for p in parts]) for i in (0, 1)]
    draws = np.zeros((num_resamples, 2))
    for r in range(num_resamples):
        seeds = rng.integers(0, len(parts), len(parts))
        for i in (0, 1):
            draws[r, i] = ratio([_resample(rng, parts[s][i]) for s in seeds])
    out = {}
    for name, value, stats in (("early", point[0], draws[:, 0]), ("late", point[1], draws[:, 1]),
                               ("delta", point[1] - point[0], draws[:, 1] - draws[:, 0])):
        stats = stats[np.isfinite(stats)]
        out[name] = _ci(value, stats, level) if stats.size else {
            "value": float("nan"), "low": float("nan"), "high": float("nan")}
    return out


def _resample(rng: np.random.Generator, steps: np.ndarray) -> np.ndarray:
    return steps[rng.integers(0, len(steps), len(steps))] if len(steps) else steps


RESOLVED_TOL = 1e-9  # a bound within this of 0 is 0 (a bootstrap mean of 0s can sum to 3e-17)


def is_resolved(interval: dict[str, float]) -> bool:
    """Whether a delta's interval excludes 0 (the gap is called real at that level); a bound
    within `RESOLVED_TOL` of 0 touches 0 (float rounding of sums, not a gap)."""
    low, high = interval["low"], interval["high"]
    return bool(np.isfinite(low) and (low > RESOLVED_TOL or high < -RESOLVED_TOL))
