"""The pre-registered part of a grid file, checked before anything runs: `endpoints` (the
primary comparisons, which Holm corrects across), `gates` (design bounds that make a comparison
"uninformative", `eval.grid_design.GATES`) and `alpha`. Read by `eval.grid_verdicts`.

    endpoints:
      - {arm: r1-s2, against: r1-s1, column: ratio}   # against: default the baseline
      - {arm: r1-s1, column: avg, gates: {min_clip_fraction: 0.01}}   # own gates win
    gates: {min_start_accuracy: 0.1, max_zero_adv_share: 0.6, min_arm_difference: 0.05}

Columns: `avg` (Avg Mean@k), `ratio` (parallel ratio over benchmarks), `BENCH:mean`,
`BENCH:pass`, `BENCH:ratio` (BENCH: a benchmark of the baseline's eval). Pure Python.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.eval.grid_design import check_gates

FIGURES = ("mean", "pass", "ratio")
ENDPOINT_KEYS = {"arm", "against", "column", "gates"}


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
        key = (e["arm"], e["against"], column)
        if key in seen:
            fail(f"the comparison {key} is named twice", where)
        seen.add(key)


def check_columns(grid: Any, benchmarks: list[str]) -> None:
    """Every endpoint's BENCH is one of `benchmarks` (those of the baseline's last eval).

    Raises:
        ConfigError: naming the endpoint's column.
    """
    for i, e in enumerate(grid.endpoints):
        bench = str(e["column"]).partition(":")[0]
        if ":" in str(e["column"]) and bench not in benchmarks:
            raise ConfigError(f"no benchmark {bench!r} in the baseline's eval; it has "
                              f"{benchmarks}", field=f"endpoints.{i}.column",
                              file=grid.file or None)
