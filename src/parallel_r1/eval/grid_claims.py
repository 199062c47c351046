"""The paper's qualitative claims as pre-registered checks: each held, not held or uninformative.

A grid file's `claims:` (checked before the run by `train.grid_prereg.check_claims`) holds two
kinds of claim; both count the training seed as the unit (`eval.seed_stats`).

Comparison, `{claim, arm, against, column, direction, margin?}`: the endpoint (arm, against,
column) of `eval.grid_verdicts` (one named in `endpoints`, or the claim's own, which joins the
family Holm corrects: `with_claims`), d_s = column(arm, s) - column(against, s) per seed s.
- `>` is held when the comparison is significant after Holm across the tested family
  (p_Holm <= alpha, two-sided per-seed t-test) and the mean difference is above 0;
- `>=` (non-inferiority) is held when the lower end of the comparison's two-sided 95%
  t-interval over seeds (the interval of the delta table) is above -margin, the margin
  pre-registered in the file (a fraction: 0.02 = 2 points); a one-sided test at 2.5% per
  claim, the usual non-inferiority convention, not corrected across claims.

Trend, `{claim, arm, trend, direction: rises | falls}`: over the arm's last RL phase
(`grid_design.last_phase`), per seed, the figure on the last third of the phase's steps minus
the figure on the first third (`grid_report.thirds`), each third pooled over its rollouts'
blocks (`analysis.block_tallies`): `ratio` (share of rollouts with a valid block), `position`
(block relative position, 0 start .. 1 end), `verification` / `exploration` (share of blocks
of that role, `analysis.classify_block`). Held when the 95% t-interval of the per-seed
differences (S - 1 degrees of freedom) lies wholly above 0 (rises) or below 0 (falls); not
corrected across claims.

Uninformative, with the reason, instead of held / not held: a pre-registered gate fails (a
comparison: its endpoint's gates; a trend: the grid's gates and the claim's own on the arm's
run diagnostics and equation accuracy, `grid_verdicts.arm_gate_values`), or the data is missing
(one seed: no interval; an arm without RL rollout dumps; a third of a seed with fewer than
`MIN_THIRD_COUNT` rollouts or blocks to count), or the seeds agree exactly (SD 0: no
seed-to-seed variance to test against, `seed_stats.SD_ZERO`).
Pure Python + numpy; writes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parallel_r1.eval import seed_stats
from parallel_r1.eval.report import md_table

TRENDS = ("ratio", "position", "verification", "exploration")
HELD, NOT_HELD, UNINFORMATIVE = "held", "not held", "uninformative"
# a trend's third counts at least this many rollouts (ratio) or blocks (the others) per seed:
# on fewer, per-seed shares are near 0/1 and can agree exactly (sd 0), and the t-interval
# would then be a point that "excludes 0" on a handful of blocks
MIN_THIRD_COUNT = 5
_TALLY = {"ratio": "parallel", "position": "position", "verification": "verification",
          "exploration": "exploration"}


def with_claims(endpoints: list[dict], claims: list[dict]) -> list[dict]:
    """The endpoints, then each comparison claim's (arm, against, column) that no endpoint
    names, with the claim's gates: the family Holm corrects. Inputs as checked by
    `train.grid_prereg`."""
    out, keys = list(endpoints), {(e["arm"], e["against"], e["column"]) for e in endpoints}
    for c in claims:
        key = (c["arm"], c.get("against"), c.get("column"))
        if "column" in c and key not in keys:
            keys.add(key)
            out.append({"arm": c["arm"], "against": c["against"], "column": c["column"],
                        "gates": c.get("gates") or {}})
    return out


def _outcome(claim: dict, outcome: str, why: str, fig: dict | None = None) -> dict:
    return {**claim, "outcome": outcome, "why": why,
            **{k: (fig or {}).get(k) for k in ("value", "low", "high", "p", "num_seeds")}}


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def compare_outcome(claim: dict, comparison: dict, alpha: float) -> dict:
    """A comparison claim's outcome from its endpoint's verdict (`grid_verdicts.compare`).

    Returns:
        the claim with "outcome" (held | not held | uninformative), "why" (one line), "value",
        "low", "high", "p", "num_seeds" (fractions).
    """
    c = comparison
    if c["failed"]:
        return _outcome(claim, UNINFORMATIVE, "gate failed: " + "; ".join(c["failed"]), c)
    if c["num_seeds"] < 2 or c["low"] is None:
        return _outcome(claim, UNINFORMATIVE, seed_stats.NO_INTERVAL, c)
    if seed_stats.is_sd_zero(c):
        return _outcome(claim, UNINFORMATIVE, seed_stats.SD_ZERO, c)
    interval = f"{_pts(c['value'])} [{_pts(c['low'])}, {_pts(c['high'])}] points"
    if claim["direction"] == ">":
        held = bool(c.get("significant")) and c["value"] > 0
        why = (f"{interval}; p Holm {c['p_holm']:.3g} "
               f"{'<=' if c.get('significant') else '>'} {alpha:g}")
        if c.get("significant") and c["value"] <= 0:
            why += " in the other direction"
        return _outcome(claim, HELD if held else NOT_HELD, why, c)
    margin = claim["margin"]
    held = c["low"] > -margin
    return _outcome(claim, HELD if held else NOT_HELD,
                    f"{interval}; lower end {'>' if held else '<='} -margin "
                    f"{-100 * margin:.1f}", c)


def trend_differences(tallied: dict, figure: str) -> tuple[list[float], str]:
    """Per seed, late third minus early third of the last RL phase of one figure.

    Args:
        tallied: `grid_report.step_tallies` of the arm. figure: one of TRENDS.

    Returns:
        ([S] differences, "") or ([], why the data is missing).
    """
    from parallel_r1.eval.grid_report import thirds

    key, diffs = _TALLY[figure], []
    if not tallied["per_seed"]:
        return [], "the arm has no RL stage"
    for seed, steps in tallied["per_seed"].items():
        early, late = thirds(steps, tallied["phases"][seed])
        if len(set(early) | set(late)) < 2:
            return [], f"seed {seed}: fewer than 2 dumped steps in the last RL phase"
        parts = []
        for name, chosen in (("early", early), ("late", late)):
            total, count = np.sum([steps[s][key] for s in chosen], axis=0)
            what = "rollouts" if figure == "ratio" else "blocks"
            if count == 0:
                return [], f"seed {seed}: no {what} in the {name} third"
            if count < MIN_THIRD_COUNT:  # a share of 1 or 2 blocks is 0 or 1: seeds can agree
                what = what[:-1] if count == 1 else what
                return [], (f"seed {seed}: {int(count)} {what} in the {name} third "
                            f"(< {MIN_THIRD_COUNT})")
            parts.append(total / count)
        diffs.append(float(parts[1] - parts[0]))
    return diffs, ""


def trend_outcome(claim: dict, tallied: dict, failed: list[str]) -> dict:
    """A trend claim's outcome (see the module docstring); `failed`: the gates it fails.

    Returns:
        as `compare_outcome`; value and interval in the figure's units (late - early).
    """
    if failed:
        return _outcome(claim, UNINFORMATIVE, "gate failed: " + "; ".join(failed))
    diffs, missing = trend_differences(tallied, claim["trend"])
    if missing:
        return _outcome(claim, UNINFORMATIVE, missing)
    fig = seed_stats.seed_interval(diffs)
    if fig["low"] is None:
        return _outcome(claim, UNINFORMATIVE, seed_stats.NO_INTERVAL, fig)
    if seed_stats.is_sd_zero(fig):
        return _outcome(claim, UNINFORMATIVE, seed_stats.SD_ZERO, fig)
    rises = claim["direction"] == "rises"
    held = fig["low"] > 0 if rises else fig["high"] < 0
    return _outcome(claim, HELD if held else NOT_HELD,
                    f"late - early {fig['value']:+.3f} [{fig['low']:+.3f}, {fig['high']:+.3f}]"
                    f" over {fig['num_seeds']} seeds; {'excludes' if held else 'includes'} 0"
                    f"{'' if held else ' or lies on the other side'}", fig)


def evaluate(claims: list[dict], verdicts: dict, design: dict, arms: dict[str, Any],
             gates: dict) -> list[dict]:
    """Every claim's outcome, in the file's order.

    Args:
        claims: the grid file's checked claims. verdicts: `grid_verdicts.compare` over
            `with_claims(endpoints, claims)`. design: `grid_design.collect`. arms: name ->
            `grid_report.ArmRuns`. gates: the grid's gates.

    Returns:
        [claim + {"outcome", "why", "value", "low", "high", "p", "num_seeds"}].
    """
    from parallel_r1.eval.grid_design import gate_failures
    from parallel_r1.eval.grid_report import step_tallies
    from parallel_r1.eval.grid_verdicts import arm_gate_values

    by_key = {(c["arm"], c["against"], c["column"]): c for c in verdicts["comparisons"]}
    out = []
    for claim in claims:
        if "trend" in claim:
            failed = gate_failures({**gates, **(claim.get("gates") or {})},
                                   arm_gate_values(design, claim["arm"]))
            out.append(trend_outcome(claim, step_tallies(arms[claim["arm"]]), failed))
        else:
            c = by_key[(claim["arm"], claim["against"], claim["column"])]
            out.append(compare_outcome(claim, c, verdicts["alpha"]))
    return out


def claims_table(checked: list[dict], titles: dict[str, str]) -> str:
    """One row per claim: what is tested, the outcome and why."""
    rows = []
    for c in checked:
        who = titles.get(c["arm"], c["arm"])
        if "trend" in c:
            test = f"{who}: {c['trend']} {c['direction']} (late - early third of the last RL phase)"
        else:
            test = (f"{who} {c['direction']} {titles.get(c['against'], c['against'])} on "
                    f"{c['column']}" + (f", margin {100 * c['margin']:.1f} points"
                                        if c["direction"] == ">=" else ", Holm"))
        rows.append([c["claim"], test, f"**{c['outcome']}**", c["why"]])
    return md_table(["Claim", "Test", "Outcome", "Why"], rows)


DEFINITIONS = (
    "A `>` claim holds when its comparison is significant after Holm across the tested family, "
    "in the claimed direction; a `>=` claim (non-inferiority) holds when the lower end of its "
    "two-sided 95% t-interval over seeds lies above -margin (pre-registered); a trend claim "
    "holds when the t-interval over seeds of late third minus early third of the last RL phase "
    "excludes 0 in the claimed direction. Uninformative: a pre-registered gate failed, the data "
    "is missing, or the seeds agree exactly (SD 0) (the reason is given); its interval is not "
    "read.")
