"""The pre-registered part of a grid file, checked before anything runs: `endpoints` (the
primary comparisons, which Holm corrects across), `gates` (design bounds that make a comparison
"uninformative", `eval.grid_design.GATES`), `alpha`, and `claims` (the paper's qualitative
claims, each held / not held / uninformative: `eval.grid_claims`). Read by `eval.grid_verdicts`.

    endpoints:
      - {arm: r1-s2, against: r1-s1, column: ratio}   # against: default the baseline
      - {arm: r1-s1, column: avg, gates: {min_clip_fraction: 0.01}}   # own gates win
    gates: {min_start_accuracy: 0.1, max_zero_adv_share: 0.6, min_arm_difference: 0.05}

    claims:
      - {claim: "S2 keeps a higher ratio than S1", arm: r1-s2, against: r1-s1, column: ratio,
         direction: ">"}                            # against: default the baseline
      - {claim: "S2 >= GRPO", arm: r1-s2, column: avg, direction: ">=", margin: 0.02}
      - {claim: "S1's ratio falls during RL", arm: r1-s1, trend: ratio, direction: falls}

Columns: `avg` (Avg Mean@k), `ratio` (parallel ratio over benchmarks), `BENCH:mean`,
`BENCH:pass`, `BENCH:ratio` (BENCH: a benchmark of the baseline's eval). A comparison claim's
(arm, against, column) is an endpoint: the one named in `endpoints`, or its own, which joins the
tested family (`eval.grid_claims.with_claims`); its gates are that endpoint's (a claim of its
own may carry `gates`). `margin` (fraction, >= 0) is required by ">=" and only by it. Trend
figures: `ratio`, `position`, `verification`, `exploration` (`eval.grid_claims.TRENDS`).
Pure Python.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.eval.grid_claims import TRENDS
from parallel_r1.eval.grid_design import check_gates

FIGURES = ("mean", "pass", "ratio")
ENDPOINT_KEYS = {"arm", "against", "column", "gates"}
COMPARE_KEYS = {"claim", "arm", "against", "column", "direction", "margin", "gates"}
TREND_KEYS = {"claim", "arm", "trend", "direction", "gates"}
DIRECTIONS = {"column": (">", ">="), "trend": ("rises", "falls")}


def check_prereg(grid: Any) -> None:
    """Check and complete `grid.endpoints` (fills `against` with the baseline), `grid.gates`
    and `grid.alpha` in place.

    Raises:
        ConfigError: naming the field (`endpoints.1.column`, `gates.min_x`, `alpha`).
    """
    names = [a.name for a in grid.arms]

    def fail(message: str, where: str) -> None:
        raise ConfigError(message, field=where, file=grid.file or None)

    if isinstance(grid.alpha, bool) or not isinstance(grid.alpha, (int, float)) \
            or not 0 < grid.alpha < 1:
        fail(f"must be a number in (0, 1), got {grid.alpha!r}", "alpha")
    for where, problem in check_gates(grid.gates, "gates"):
        fail(problem, where)
    if not isinstance(grid.endpoints, list):
        fail(f"must be a list of comparisons, got {grid.endpoints!r}", "endpoints")
    seen = set()
    for i, e in enumerate(grid.endpoints):
        where = f"endpoints.{i}"
        if not isinstance(e, dict) or not {"arm", "column"} <= set(e) \
                or set(e) - ENDPOINT_KEYS:
            fail(f"an endpoint is {{arm, column, against?, gates?}}, got {e!r}", where)
        e.setdefault("against", grid.baseline)
        e.setdefault("gates", {})
        _check_comparison(e, where, names, fail)
        key = (e["arm"], e["against"], e["column"])
        if key in seen:
            fail(f"the comparison {key} is named twice", where)
        seen.add(key)
    check_claims(grid)


def _check_comparison(e: dict, where: str, names: list[str], fail: Any) -> None:
    for key in ("arm", "against"):
        if e[key] not in names:
            fail(f"names no arm: {e[key]!r}; arms: {names}", f"{where}.{key}")
    if e["arm"] == e["against"]:
        fail(f"compares {e['arm']!r} with itself", where)
    column = e["column"]
    bench, sep, figure = str(column).partition(":")
    if not (column in ("avg", "ratio") or (sep and bench and figure in FIGURES)):
        fail(f"must be avg, ratio or BENCH:{'|'.join(FIGURES)}, got {column!r}",
             f"{where}.column")
    for field, problem in check_gates(e["gates"], f"{where}.gates"):
        fail(problem, field)


def check_claims(grid: Any) -> None:
    """Check and complete `grid.claims` in place (fills `against`, `gates`, `margin`).

    Raises:
        ConfigError: naming the field (`claims.2.direction`, `claims.0.margin`, ...).
    """
    names = [a.name for a in grid.arms]

    def fail(message: str, where: str) -> None:
        raise ConfigError(message, field=where, file=grid.file or None)

    if not isinstance(grid.claims, list):
        fail(f"must be a list of claims, got {grid.claims!r}", "claims")
    endpoints = {(e["arm"], e["against"], e["column"]): i for i, e in enumerate(grid.endpoints)}
    for i, c in enumerate(grid.claims):
        where = f"claims.{i}"
        kind = "trend" if isinstance(c, dict) and "trend" in c else "column"
        keys = TREND_KEYS if kind == "trend" else COMPARE_KEYS
        if not isinstance(c, dict) or not {"claim", "arm", kind, "direction"} <= set(c):
            fail("a claim is {claim, arm, against?, column, direction: '>' | '>=', margin?, "
                 "gates?} or {claim, arm, trend, direction: rises | falls, gates?}, got "
                 f"{c!r}", where)
        if set(c) - keys:
            fail(f"unknown key(s) {sorted(set(c) - keys)}; a {kind} claim has {sorted(keys)}",
                 where)
        if not isinstance(c["claim"], str) or not c["claim"].strip():
            fail(f"must be the claim in words, got {c['claim']!r}", f"{where}.claim")
        if c["direction"] not in DIRECTIONS[kind]:
            fail(f"must be one of {list(DIRECTIONS[kind])}, got {c['direction']!r}",
                 f"{where}.direction")
        c.setdefault("gates", {})
        if kind == "trend":
            if c["arm"] not in names:
                fail(f"names no arm: {c['arm']!r}; arms: {names}", f"{where}.arm")
            if c["trend"] not in TRENDS:
                fail(f"must be one of {list(TRENDS)}, got {c['trend']!r}", f"{where}.trend")
            for field, problem in check_gates(c["gates"], f"{where}.gates"):
                fail(problem, field)
            continue
        c.setdefault("against", grid.baseline)
        _check_comparison(c, where, names, fail)
        margin = c.setdefault("margin", None)
        if c["direction"] == ">=" and (isinstance(margin, bool) or not isinstance(
                margin, (int, float)) or not 0 <= margin < 1):
            fail(f"'>=' needs a pre-registered margin in [0, 1) (fraction), got {margin!r}",
                 f"{where}.margin")
        if c["direction"] == ">" and margin is not None:
            fail("only '>=' (non-inferiority) takes a margin", f"{where}.margin")
        named = endpoints.get((c["arm"], c["against"], c["column"]))
        if named is not None and c["gates"]:
            fail(f"the comparison is endpoints.{named}: set its gates there", f"{where}.gates")


def check_columns(grid: Any, benchmarks: list[str]) -> None:
    """Every endpoint's and comparison claim's BENCH is one of `benchmarks` (those of the
    baseline's last eval).

    Raises:
        ConfigError: naming the endpoint's column.
    """
    named = [("endpoints", i, e) for i, e in enumerate(grid.endpoints)]
    named += [("claims", i, c) for i, c in enumerate(grid.claims) if "column" in c]
    for part, i, e in named:
        bench = str(e["column"]).partition(":")[0]
        if ":" in str(e["column"]) and bench not in benchmarks:
            raise ConfigError(f"no benchmark {bench!r} in the baseline's eval; it has "
                              f"{benchmarks}", field=f"{part}.{i}.column",
                              file=grid.file or None)


def check_trend_arms(grid: Any, rl_arms: set[str]) -> None:
    """Every trend claim names an arm with an RL stage (a trend is read off RL rollouts).

    Raises:
        ConfigError: naming the claim's arm.
    """
    for i, c in enumerate(grid.claims):
        if "trend" in c and c["arm"] not in rl_arms:
            raise ConfigError(f"{c['arm']!r} has no rl stage, so it has no trend to read; arms "
                              f"with one: {sorted(rl_arms)}", field=f"claims.{i}.arm",
                              file=grid.file or None)
