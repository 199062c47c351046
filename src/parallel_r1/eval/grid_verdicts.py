"""The verdicts of a grid: per-seed paired t-intervals, design gates, Holm over the primary family.

A comparison is (arm, against, column). Columns: "avg" (Avg Mean@k over benchmarks), "ratio"
(parallel ratio averaged over benchmarks) and "BENCH:mean" / "BENCH:pass" / "BENCH:ratio". Its
per-seed paired difference d_s = column(arm, seed s) - column(against, seed s) (both arms under
seed s, averaged over the same problems and samples) goes to `seed_stats.seed_interval`.

Which comparisons are tested is fixed before the run, in the grid file: `endpoints` (the primary
comparisons; the family Holm corrects) and `gates` (design bounds, `eval.grid_design.GATES`). A
comparison that fails a gate is "uninformative" and is not tested (it leaves the family); so is
one whose S >= 2 seeds agree exactly (SD 0: `seed_stats.SD_ZERO`), shown with its point. Without
`endpoints`, the family is every arm against the baseline in every column of the delta table.
Comparisons outside the family are shown with their interval as exploratory (uncorrected).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parallel_r1.eval import seed_stats
from parallel_r1.eval.grid_design import gate_failures
from parallel_r1.eval.report import md_table

ACCURACY_FIGURES = ("mean", "pass")


def columns(benchmarks: list[str]) -> list[str]:
    """The delta table's columns, in order: ratio, Mean@k and Pass@k per benchmark, avg."""
    return ["ratio", *(f"{b}:mean" for b in benchmarks), *(f"{b}:pass" for b in benchmarks),
            "avg"]


def column_title(column: str, bench_info: dict[str, dict]) -> str:
    """"Avg Mean@k", "Parallel ratio", "Trap-L1 Mean@4", ... for a column name."""
    if column in ("avg", "ratio"):
        return {"avg": "Avg Mean@k", "ratio": "Parallel ratio"}[column]
    bench, figure = column.split(":")
    info = bench_info[bench]
    name = {"mean": "Mean", "pass": "Pass", "ratio": "ratio"}[figure]
    return f"{info['title']} {name}@{info['k']}" if figure != "ratio" else \
        f"{info['title']} parallel ratio"


def per_seed(mats: dict[str, dict], column: str) -> np.ndarray:
    """[S] the column's value for each seed of one arm (`grid_report.cell_matrices` output)."""
    if column in ("avg", "ratio"):
        figure = "mean" if column == "avg" else "ratio"
        return np.mean([m[figure].mean(axis=1) for m in mats.values()], axis=0)
    bench, figure = column.split(":")
    return mats[bench][figure].mean(axis=1)


def _chance(column: str, chance: dict[str, float]) -> float | None:
    if column == "avg":
        return float(np.mean(list(chance.values())))
    bench, _, figure = column.partition(":")
    return chance.get(bench) if figure in ACCURACY_FIGURES else None


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _arm_value(arm: str, per_seed: dict, key: str, missing: str) -> tuple:
    """(arm, mean over seeds), or (arm, None, why) when some seed lacks the value."""
    lacking = [s for s, d in per_seed.items() if d.get(key) is None]
    if not lacking:
        return arm, _mean([d[key] for d in per_seed.values()])
    where = "" if len(lacking) == len(per_seed) else \
        f" in seed{'s' if len(lacking) > 1 else ''} {', '.join(map(str, lacking))}"
    return arm, None, missing + where


def arm_gate_values(design: dict, arm: str) -> dict[str, list[tuple]]:
    """Diagnostic -> [(arm, value)] of one arm, mean over seeds: its run diagnostics (none
    without RL) and its equation accuracy on its eval samples; (arm, None, why) where a seed
    lacks one (not logged; no equation written), which fails its gate as not measured."""
    values: dict[str, list] = {}
    runs = {s: d for s, d in design["runs"].get(arm, {}).items() if d}
    for key in ("start_accuracy", "zero_adv_share", "clip_fraction", "cap_binding"):
        if runs:
            values[key] = [_arm_value(arm, runs, key, "not logged")]
    skill = design.get("skill", {}).get(arm, {})
    if skill:
        values["equation_accuracy"] = [_arm_value(arm, skill, "equation_accuracy",
                                                  "0 equations")]
    return values


def gate_values(mats: dict, design: dict, arm: str, against: str, column: str
                ) -> dict[str, list[tuple]]:
    """Diagnostic -> [(whose, value)] that the gates of one comparison are checked on: each arm's
    `arm_gate_values`, the better arm's margin over the chance level (accuracy columns), and
    how often the two arms' last-phase RL rollouts differed (where no RL step matches, how
    often their eval samples differed)."""
    values: dict[str, list] = {}
    for who in (arm, against):
        for key, pairs in arm_gate_values(design, who).items():
            values.setdefault(key, []).extend(pairs)
    chance = _chance(column, design["chance"])
    if chance is not None:
        best = max(float(per_seed(mats[w], column).mean()) for w in (arm, against))
        values["over_chance"] = [(f"the better of {arm} and {against}", best - chance)]
    pair = design["pairs"].get((arm, against), {})
    rollouts = _mean([p.get("rollouts_differ") for p in pair.values()])
    if rollouts is not None:
        values["rollouts_differ"] = [(f"{arm} vs {against} (RL rollouts)", rollouts)]
    else:  # no RL steps to match (an arm without RL, or other curricula): the eval samples
        values["rollouts_differ"] = [(f"{arm} vs {against} (eval samples)",
                                      _mean([p.get("eval_differ") for p in pair.values()]))]
    return values


def compare(mats: dict[str, dict], baseline: str, *, endpoints: list[dict], gates: dict,
            alpha: float, design: dict) -> dict[str, Any]:
    """Every arm against the baseline in every column, plus the endpoints, with verdicts.

    Args:
        mats: arm -> `cell_matrices`. endpoints: [{"arm", "against", "column", "gates"}] the
            primary comparisons (empty: all arm-vs-baseline comparisons are the family).
        gates: the grid's gates (an endpoint's own `gates` override them). alpha: family level.
        design: {"runs": {arm: {seed: run_diagnostics}}, "chance": {bench: level},
            "pairs": {(arm, against): {seed: arm_difference}}}.

    Returns:
        {"alpha", "family_size", "comparisons": [{"arm", "against", "column", "primary",
         "value", "low", "high", "p", "sd", "num_seeds", "mde", "failed", "p_holm",
         "verdict"}]} (fractions, not points).
    """
    benches = list(mats[baseline])
    chosen = {(e["arm"], e["against"], e["column"]): e for e in endpoints}
    keys = [(a, baseline, c) for a in mats if a != baseline for c in columns(benches)]
    keys += [k for k in chosen if k not in keys]
    out = []
    for arm, against, column in keys:
        endpoint = chosen.get((arm, against, column))
        primary = endpoint is not None if endpoints else True
        fig = seed_stats.seed_interval(per_seed(mats[arm], column)
                                       - per_seed(mats[against], column))
        own = {**gates, **((endpoint or {}).get("gates") or {})}
        failed = gate_failures(own, gate_values(mats, design, arm, against, column))
        out.append({"arm": arm, "against": against, "column": column, "primary": primary,
                    **fig, "mde": seed_stats.min_detectable_effect(fig["sd"], fig["num_seeds"]),
                    "failed": failed, "p_holm": None})
    # p is None with one seed or SD 0 (`seed_stats.seed_interval`): not tested, like a gated one
    family = [c for c in out if c["primary"] and not c["failed"] and c["p"] is not None]
    for c, h in zip(family, seed_stats.holm([c["p"] for c in family], alpha=alpha)):
        c["p_holm"], c["significant"] = h["p_holm"], h["significant"]
    for c in out:
        c.setdefault("significant", None)
        c["verdict"] = _verdict(c)
    return {"alpha": alpha, "family_size": len(family), "preregistered": bool(endpoints),
            "comparisons": out}


def _verdict(c: dict) -> str:
    if c["failed"]:
        return "uninformative (" + "; ".join(c["failed"]) + ")"
    if c["num_seeds"] < 2:
        return seed_stats.NO_INTERVAL
    if seed_stats.is_sd_zero(c):
        return f"uninformative ({seed_stats.SD_ZERO})"
    if not c["primary"]:
        return "exploratory (uncorrected)"
    return "significant after Holm" if c["significant"] else "not significant after Holm"


def _pts(x: float | None, signed: bool = True) -> str:
    return "–" if x is None else f"{100 * x:{'+' if signed else ''}.1f}"


def cell(c: dict) -> str:
    """"+1.2 [-3.0, +5.4]" in points, with marks: H significant after Holm, U uninformative
    (a gate failed, or SD 0 over seeds: the point, untested); one seed: the value and
    "1 seed: no interval"."""
    if c["low"] is None:
        text = f"{_pts(c['value'])} ({seed_stats.NO_INTERVAL})"
    else:
        text = f"{_pts(c['value'])} [{_pts(c['low'])}, {_pts(c['high'])}]"
    untested = c["failed"] or seed_stats.is_sd_zero(c)
    return text + (" U" if untested else " H" if c.get("significant") else "")


def delta_table(verdicts: dict, bench_info: dict, titles: dict[str, str], baseline: str) -> str:
    """Arm - baseline per column, per-seed t-intervals in points (see `cell`)."""
    cols = columns(list(bench_info))
    by_key = {(c["arm"], c["against"], c["column"]): c for c in verdicts["comparisons"]}
    arms = list(dict.fromkeys(c["arm"] for c in verdicts["comparisons"]
                              if c["against"] == baseline))
    rows = [[titles.get(a, a)] + [cell(by_key[(a, baseline, col)]) for col in cols]
            for a in arms]
    return md_table(["Arm - baseline"] + [column_title(c, bench_info) for c in cols], rows)


def family_table(verdicts: dict, bench_info: dict, titles: dict[str, str]) -> str:
    """The tested family and the primary endpoints: interval, p, Holm's p, MDE, verdict."""
    rows = [[f"{titles.get(c['arm'], c['arm'])} - {titles.get(c['against'], c['against'])}",
             column_title(c["column"], bench_info), cell(c),
             "–" if c["p"] is None else f"{c['p']:.3f}",
             "–" if c["p_holm"] is None else f"{c['p_holm']:.3f}",
             "n/a (SD 0)" if seed_stats.is_sd_zero(c) else _pts(c["mde"], signed=False),
             c["verdict"]]
            for c in verdicts["comparisons"] if c["primary"]]
    return md_table(["Comparison", "Column", "Delta [95% t, seeds]", "p", "p Holm",
                     "MDE 80%", "Verdict"], rows)


def mde_line(verdicts: dict, bench_info: dict, baseline: str) -> str:
    """The smallest effect detectable at 80% power per column (median over arms' seed SDs), at
    the two-sided 5% level and at Holm's most stringent level alpha / m (m tested endpoints)."""
    m = verdicts["family_size"]
    strict = verdicts["alpha"] / m if m else None
    parts = []
    for col in columns(list(bench_info)):
        cs = [c for c in verdicts["comparisons"]
              if c["column"] == col and c["against"] == baseline and c["mde"] is not None]
        if cs:
            mde = float(np.median([c["mde"] for c in cs]))
            text = f"{column_title(col, bench_info)} {100 * mde:.1f}"
            if strict is not None:
                corrected = [seed_stats.min_detectable_effect(c["sd"], c["num_seeds"],
                                                              alpha=strict) for c in cs]
                text += f" ({100 * float(np.median(corrected)):.1f} at alpha/m)"
            parts.append(text)
    seeds = max((c["num_seeds"] for c in verdicts["comparisons"]), default=0)
    if not parts:
        return f"Smallest detectable effect: none ({seeds} seed(s): no seed-to-seed SD)."
    level = (f"; in brackets at Holm's most stringent level alpha/m = {verdicts['alpha']:g}/{m}"
             f" = {strict:.4g}, the bar the first of the {m} tested endpoints must clear"
             if strict is not None else "; no endpoint tested, so no corrected level")
    return (f"Smallest effect detectable at 80% power with {seeds} seeds (two-sided 5%, paired "
            "t on seeds, median over arms of the observed seed-to-seed SD" + level
            + "), in points: " + "; ".join(parts) + ".")
