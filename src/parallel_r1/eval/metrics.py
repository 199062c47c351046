"""Evaluation metrics over graded samples: mean@k, pass@k, maj@k, parallel ratio, block statistics.

Inputs are per problem: `correct[i]` holds the 0/1 grades of the samples of problem i (and
`preds[i]` their extracted answers). Exact, unbiased pass@k is the headline; the paper's
bootstrap "best@k/mean" (verl's Pass@16, biased low) is here only to compare with its numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from parallel_r1.format.parse import parse
from parallel_r1.format.stats import is_valid_block
from parallel_r1.format.tags import PARALLEL_OPEN
from parallel_r1.rewards.grading import DEFAULT_GRADER

Grades = Sequence[Sequence[float]]  # [problems][samples], each 0/1 (bools accepted)


def mean_at_k(correct: Grades) -> float:
    """Mean@k: the mean accuracy of each problem's samples, averaged over problems.

    Raises:
        ValueError: no problems, or a problem with no samples.
    """
    return float(np.mean([_problem_mean(row) for row in _check(correct)]))


def _problem_mean(row: Sequence[float]) -> float:
    return float(np.mean(np.asarray(row, dtype=float)))


def _check(correct: Grades) -> Grades:
    if len(correct) == 0:
        raise ValueError("no problems to average over")
    for i, row in enumerate(correct):
        if len(row) == 0:
            raise ValueError(f"problem {i} has no samples")
    return correct


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """Unbiased pass@k of one problem (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms a large binomial.

    Raises:
        ValueError: k < 1, k > n, or c outside [0, n].
    """
    n, c = num_samples, num_correct
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_mean(correct: Grades, k: int) -> float:
    """Unbiased pass@k averaged over problems (each problem has n >= k samples)."""
    rows = _check(correct)
    return float(np.mean([pass_at_k(len(r), round(sum(r)), k) for r in rows]))


def bootstrap_best_at_k(values: Sequence[float], k: int, *, num_resamples: int = 1000,
                        seed: int = 42) -> tuple[float, float]:
    """THE PAPER'S "best@k/mean" (verl's bootstrap Pass@k) for one problem; biased low.

    Draws `num_resamples` resamples of size k WITH replacement from `values` (a fresh
    `RandomState(seed)` per call, as verl re-seeds NumPy per problem) and returns the mean and std
    of their max. For n = k = 16 and one correct sample its expectation is 1-(15/16)^16 = 0.644,
    where exact pass@16 is 1.0. Use `pass_at_k` for reporting.
    """
    if len(values) == 0:
        raise ValueError("no samples to resample")
    rng = np.random.RandomState(seed)
    data = np.asarray(values, dtype=float)
    maxes = [data[rng.choice(len(data), size=k, replace=True)].max() for _ in range(num_resamples)]
    return float(np.mean(maxes)), float(np.std(maxes))


def bootstrap_best_at_k_mean(correct: Grades, k: int, *, num_resamples: int = 1000,
                             seed: int = 42) -> float:
    """THE PAPER'S Pass@k column: `bootstrap_best_at_k` averaged over problems (biased low)."""
    return float(np.mean([bootstrap_best_at_k(r, k, num_resamples=num_resamples, seed=seed)[0]
                          for r in _check(correct)]))


def majority_vote(preds: Sequence[Hashable | None],
                  key: Callable[[Hashable], Hashable] | None = None, *,
                  grader: str | None = DEFAULT_GRADER) -> int | None:
    """Index of the sample whose answer wins the vote, or None when no sample has an answer.

    Samples without an answer (None) do not vote. Answers are grouped by `key(pred)` when a key
    is given; otherwise answers that `grader` finds equivalent form one group (`0.5`,
    `\\frac{1}{2}` and `1/2` are one answer; `rewards.grading.equivalent`, the gold's side taken
    by the group's first answer), or, with grader=None, equal stripped strings. A tie goes to the
    answer that appeared first, as in verl's `calc_maj_val`; the returned index is that answer's
    first sample.

    Cost: one comparison per (sample, group) pair at most, cached; identical strings are free.
    """
    if key is not None or grader is None:
        key = key or (lambda p: str(p).strip())
        keys = [None if p is None else key(p) for p in preds]
        return _vote(keys, lambda a, b: a == b)
    from parallel_r1.rewards.grading import equivalent

    answers = [None if p is None else str(p).strip() for p in preds]
    return _vote(answers, lambda a, b: equivalent(a, b, grader))


def _vote(answers: Sequence[Hashable | None], same: Callable[[Hashable, Hashable], bool]
          ) -> int | None:
    """Group answers with `same(answer, first answer of a group)`; the biggest group's first
    index wins, ties to the group seen first."""
    firsts: list[int] = []  # first sample index of each group
    counts: list[int] = []
    group_of: dict[Hashable, int] = {}  # identical answers skip the comparisons
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        group = group_of.get(answer)
        if group is None:
            group = next((g for g, first in enumerate(firsts) if same(answer, answers[first])),
                         None)
            if group is None:
                firsts.append(i)
                counts.append(0)
                group = len(firsts) - 1
            group_of[answer] = group
        counts[group] += 1
    if not counts:
        return None
    best = max(counts)
    return firsts[counts.index(best)]  # groups are in order of first appearance


def maj_at_k(preds: Sequence[Sequence[Hashable | None]], correct: Grades,
             key: Callable[[Hashable], Hashable] | None = None, *,
             grader: str | None = DEFAULT_GRADER) -> float:
    """maj@k: the share of problems whose majority answer is correct (no answer -> wrong).

    Args:
        preds: [problems][samples] extracted answers (None = no answer).
        correct: [problems][samples] grades, aligned with `preds`.
        key, grader: how answers are grouped (see `majority_vote`); by default, answers the
            default grader finds equivalent.
    """
    rows = _check(correct)
    if len(preds) != len(rows):
        raise ValueError(f"{len(preds)} problems of answers but {len(rows)} of grades")
    wins = []
    for answers, grades in zip(preds, rows):
        winner = majority_vote(answers, key, grader=grader)
        wins.append(0.0 if winner is None else float(grades[winner]))
    return float(np.mean(wins))


def has_valid_block(text: str) -> bool:
    """True when `text` holds a well-formed block with content (`format.stats.is_valid_block`)."""
    return any(is_valid_block(b) for b in parse(text).blocks)


def parallel_ratio(responses: Sequence[str], *, require_valid: bool = True) -> float:
    """Share of responses with >= 1 valid block (or with any `<Parallel>`, the paper's reading
    [inferred], when `require_valid=False`); 0.0 for no responses."""
    if not responses:
        return 0.0
    test = has_valid_block if require_valid else (lambda t: PARALLEL_OPEN in t)
    return sum(map(test, responses)) / len(responses)


def block_positions(text: str) -> list[float]:
    """Relative position of each block in `text`: offset of `<Parallel>` / length, in [0, 1)."""
    return [b.start / len(text) for b in parse(text).blocks] if text else []


def structure_stats(responses: Sequence[str]) -> dict[str, float]:
    """Blocks per response, paths per response and per block, mean relative block position.

    Returns:
        {"blocks_per_response", "paths_per_response", "paths_per_block", "block_position"};
        the last two are NaN when there are no blocks.
    """
    traces = [parse(t) for t in responses]
    blocks = [b for tr in traces for b in tr.blocks]
    num_paths = [b.num_paths for b in blocks]
    positions = [p for t in responses for p in block_positions(t)]
    n = max(len(responses), 1)
    return {
        "blocks_per_response": len(blocks) / n,
        "paths_per_response": sum(num_paths) / n,
        "paths_per_block": float(np.mean(num_paths)) if blocks else float("nan"),
        "block_position": float(np.mean(positions)) if positions else float("nan"),
    }


def bootstrap_ci(per_problem_values: Sequence[float], *, confidence: float = 0.95,
                 num_resamples: int = 1000, seed: int = 0,
                 statistic: Callable[[np.ndarray], float] = np.mean) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval over problems.

    Args:
        per_problem_values: one value per problem (e.g. its mean accuracy), [N].
        confidence: the interval's coverage (0.95 -> the 2.5th and 97.5th percentiles).
        num_resamples: resamples of N problems drawn with replacement.
        seed: seed of the resampling (`np.random.default_rng(seed)`).
        statistic: reduces a [N] array to a number.

    Returns:
        (point estimate on the data, lower bound, upper bound).

    Raises:
        ValueError: no values, or confidence outside (0, 1).
    """
    data = np.asarray(per_problem_values, dtype=float)  # [N]
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(num_resamples, data.size))  # [R, N]
    stats = np.array([statistic(data[row]) for row in idx])  # [R]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(statistic(data)), float(low), float(high)


# A table whose widest possible 95% interval is over ±20 points cannot tell models apart.
MAX_HALF_WIDTH = 0.20


def worst_half_width(num_problems: int) -> float:
    """Half-width of the 95% normal interval of a share over `num_problems` problems at its
    widest (true rate 1/2): 1.96 * sqrt(0.25 / n), as a fraction (8 problems: 0.35)."""
    return 1.96 * float(np.sqrt(0.25 / max(num_problems, 1)))


def small_sample_note(benchmarks: Sequence[tuple[str, int, float]]) -> str | None:
    """One line saying why a table of these sizes means little, or None when it does not apply.

    Args:
        benchmarks: (title, problems, Mean@k as a fraction or NaN) per benchmark and model.
    Returns:
        The note when some benchmark has fewer problems than keep the worst-case 95% interval
        within ±MAX_HALF_WIDTH (25 problems), naming each, its size and its interval; a Mean@k
        of exactly 0 or 1 there adds the rule of three (the 95% bound is 3/n, not 0).
    """
    small = {title: n for title, n, _ in benchmarks if worst_half_width(n) > MAX_HALF_WIDTH}
    if not small:
        return None
    need = int(np.ceil((1.96 / (2 * MAX_HALF_WIDTH)) ** 2))
    sizes = "; ".join(f"{title}: {n} problems, a 95% interval up to ±"
                      f"{100 * worst_half_width(n):.0f} points" for title, n in small.items())
    note = (f"Note: too few problems for these figures to tell models apart ({sizes}; "
            f"{need}+ problems keep it within ±{100 * MAX_HALF_WIDTH:.0f}).")
    extreme = [n for title, n, value in benchmarks if title in small and value in (0.0, 1.0)]
    if extreme:
        n = min(extreme)
        note += (f" 0.0 [0.0, 0.0] only says none was solved (100.0 [100.0, 100.0]: all): over "
                 f"{n} problems the true rate may still be {100 * min(3 / n, 1):.0f} points from "
                 "it (rule of three, 3/n).")
    return note
