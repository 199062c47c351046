"""The comparison of a grid, in the paper's layout, with intervals over seeds and problems.

For every arm, the result is its last eval of every seed: the per-sample rows (`samples.jsonl`),
graded again here with the grid's grader when one is named (so a grader fix needs no new
sampling). Per arm and benchmark, one matrix [seeds, problems] each of: Mean@k cells (the share of
a problem's k samples that are correct), Pass@k cells (unbiased, n = k) and parallel-ratio cells
(share with a valid block). `eval.paired` turns them into the main table's figures (the value
with a 95% interval that resamples seeds and problems); the deltas to the baseline and their
verdicts count seeds (`eval.grid_verdicts`: per-seed paired t-intervals, the grid file's
pre-registered endpoints and gates, Holm), after the design checks of `eval.grid_design`.
Strategy evolution of the parallel arms (block position, block roles over training) is read from
their RL rollout dumps (`analysis.block_tallies`); figures in `grid_plots`; text in `grid_text`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.errors import DataError
from parallel_r1.eval import grid_design, grid_verdicts, paired
from parallel_r1.eval.grid_design import last_phase
from parallel_r1.eval.metrics import pass_at_k
from parallel_r1.eval.report import md_table, write_json, write_text

FIGURES = ("mean", "pass", "ratio")
ROLES = ("exploration", "verification")
MIN_PARALLEL = 0.05  # an arm gets evolution figures when this share of its rollouts has a block


@dataclass
class ArmRuns:
    """Where one arm's results are: per seed, its last eval dir and its RL stages in order."""

    name: str
    title: str
    evals: dict[int, Path]                              # seed -> eval stage dir
    rl: dict[int, list[tuple[Path, int, str]]] = field(default_factory=dict)
    # seed -> [(RL stage dir, its max_steps, its data spec)] in training order


def _rows(path: Path, grader: str) -> list[dict]:
    from parallel_r1.eval.evaluate import read_samples
    from parallel_r1.rewards.grading import grade_response

    if not path.is_file():
        raise DataError("the eval of this run has no samples file", file=str(path))
    rows = [r for r in read_samples(path) if r["run"] == "model"]
    if grader:
        rows = [{**r, "correct": grade_response(r["response"], r["answer"], grader,
                                                r.get("answer_reader", "final-answer"))[1]}
                for r in rows]  # read as the eval read them
    return rows


def cell_matrices(rows_by_seed: list[list[dict]]) -> dict[str, dict[str, Any]]:
    """Per benchmark: {"k", "problems", "mean"/"pass"/"ratio": [S, P] arrays} from eval rows.

    Raises:
        DataError: the seeds' evals differ in problems or samples per problem (cannot pair).
    """
    out: dict[str, dict[str, Any]] = {}
    benches = sorted({r["benchmark"] for rows in rows_by_seed for r in rows})
    for bench in benches:
        cells: dict[str, list[list[float]]] = {f: [] for f in FIGURES}
        problems, k = None, None
        for rows in rows_by_seed:
            groups: dict[str, list[dict]] = defaultdict(list)
            for r in rows:
                if r["benchmark"] == bench:
                    groups[r["problem_id"]].append(r)
            order = sorted(groups, key=lambda p: groups[p][0]["problem_index"])
            sizes = {len(g) for g in groups.values()}
            if problems is None:
                problems, k = order, min(sizes, default=0)
            if order != problems or sizes != {k}:
                raise DataError(f"the evals of {bench} differ across seeds in their problems or "
                                f"samples per problem ({len(order)} problems, sizes {sizes})")
            for figure, fn in (("mean", lambda g: np.mean([r["correct"] for r in g])),
                               ("pass", lambda g: pass_at_k(len(g), sum(map(bool, (
                                   r["correct"] for r in g))), len(g))),
                               ("ratio", lambda g: np.mean([r["structure"]["has_valid_block"]
                                                            for r in g]))):
                cells[figure].append([float(fn(groups[p])) for p in order])
        out[bench] = {"k": k, "problems": problems,
                      **{f: np.asarray(v, dtype=float) for f, v in cells.items()}}
    return out


def _title(bench: str) -> str:
    from parallel_r1.eval.benchmarks import BENCHMARKS

    try:
        return BENCHMARKS.get(bench).title
    except KeyError:
        return bench


def compare_arms(mats: dict[str, dict[str, dict]], baseline: str) -> dict[str, Any]:
    """Figures and paired deltas of every arm (JSON-able; fractions, not percentages).

    Args:
        mats: arm -> `cell_matrices` of its seeds. baseline: the arm deltas are taken against.

    Raises:
        DataError: an arm was not evaluated on the baseline's benchmarks, problems and k.
    """
    base = mats[baseline]
    benches = list(base)
    out: dict[str, Any] = {"baseline": baseline, "benchmarks": {
        b: {"title": _title(b), "k": base[b]["k"], "num_problems": len(base[b]["problems"])}
        for b in benches}, "arms": {}}
    for arm, m in mats.items():
        for b in benches:
            if b not in m or m[b]["problems"] != base[b]["problems"] or m[b]["k"] != base[b]["k"]:
                raise DataError(f"arm '{arm}' was not evaluated like the baseline on {b} "
                                "(same problems, seeds and samples are needed to pair)")
        entry: dict[str, Any] = {"num_seeds": int(m[benches[0]]["mean"].shape[0]), "bench": {}}
        for b in benches:
            fig = {f: paired.crossed_bootstrap([m[b][f]]) for f in FIGURES}
            fig["noise"] = paired.variance_components(m[b]["mean"]) if min(
                m[b]["mean"].shape) > 1 else None
            if arm != baseline:
                fig["delta"] = {f: paired.paired_delta([m[b][f]], [base[b][f]])
                                for f in FIGURES}
            entry["bench"][b] = fig
        entry["avg"] = paired.crossed_bootstrap([m[b]["mean"] for b in benches])
        entry["ratio"] = paired.crossed_bootstrap([m[b]["ratio"] for b in benches])
        entry["per_seed_avg"] = np.mean([m[b]["mean"].mean(axis=1) for b in benches],
                                        axis=0).tolist()
        if arm != baseline:
            entry["delta_avg"] = paired.paired_delta([m[b]["mean"] for b in benches],
                                                     [base[b]["mean"] for b in benches])
            entry["delta_ratio"] = paired.paired_delta([m[b]["ratio"] for b in benches],
                                                       [base[b]["ratio"] for b in benches])
        out["arms"][arm] = entry
    return out


def pct(fig: dict | None, signed: bool = False) -> str:
    """"12.5 [5.0, 20.0]" (percent) from {"value", "low", "high"}; "–" when missing."""
    if not fig or fig.get("value") is None or not np.isfinite(fig["value"]):
        return "–"
    f = "+.1f" if signed else ".1f"
    return f"{100 * fig['value']:{f}} [{100 * fig['low']:{f}}, {100 * fig['high']:{f}}]"


def main_table(result: dict, titles: dict[str, str]) -> str:
    """The paper's main table: parallel ratio, Mean@k / Pass@k per benchmark, Avg (all %)."""
    benches = result["benchmarks"]
    header = ["Arm", "Seeds", "Parallel ratio"] + [
        f"{b['title']} Mean@{b['k']} / Pass@{b['k']}" for b in benches.values()] + ["Avg"]
    rows = []
    for arm, e in result["arms"].items():
        rows.append([titles.get(arm, arm), e["num_seeds"], pct(e["ratio"])]
                    + [f"{pct(e['bench'][b]['mean'])} / {pct(e['bench'][b]['pass'])}"
                       for b in benches] + [pct(e["avg"])])
    return md_table(header, rows)


def delta_table(result: dict, titles: dict[str, str]) -> str:
    """Paired deltas to the baseline (points); a * marks an interval that excludes 0."""
    benches = result["benchmarks"]
    header = ["Arm - baseline", "Parallel ratio"] + [
        f"{b['title']} Mean@{b['k']}" for b in benches.values()] + [
        f"{b['title']} Pass@{b['k']}" for b in benches.values()] + ["Avg Mean@k"]
    rows = []
    for arm, e in result["arms"].items():
        if arm == result["baseline"]:
            continue

        def cell(fig: dict) -> str:
            return pct(fig, signed=True) + (" *" if paired.is_resolved(fig) else "")

        rows.append([titles.get(arm, arm), cell(e["delta_ratio"])]
                    + [cell(e["bench"][b]["delta"]["mean"]) for b in benches]
                    + [cell(e["bench"][b]["delta"]["pass"]) for b in benches]
                    + [cell(e["delta_avg"])])
    return md_table(header, rows)


def step_tallies(arm: ArmRuns) -> dict[str, Any]:
    """`analysis.block_tallies` of one arm's RL rollout dumps, steps numbered on across its RL
    stages (stage 2 step 1 = stage 1's max_steps + 1).

    Returns:
        {"per_seed": {seed: {step: tallies}}, "phases": {seed: [first, last] step of its last
         phase (`grid_design.last_phase`)}, "boundaries": [steps where a stage starts]}.
    """
    from parallel_r1.eval.analysis import _read_jsonl, block_tallies, last_chunks

    per_seed, phases, boundaries = {}, {}, []
    for seed, stages in sorted(arm.rl.items()):
        offset, steps, bounds = 0, {}, []
        _, phase_start = last_phase(stages)
        for folder, max_steps, _ in stages:
            path = folder / "rollouts.jsonl"
            rows = last_chunks(_read_jsonl(path)) if path.is_file() else []
            steps.update({offset + s: t for s, t in block_tallies(rows).items()})
            bounds.append(offset + 1)
            offset += max_steps
        per_seed[seed], phases[seed], boundaries = steps, [phase_start, offset], bounds[1:]
    return {"per_seed": per_seed, "phases": phases, "boundaries": boundaries}


def thirds(steps: dict[int, dict], phase: list[int]) -> tuple[list[int], list[int]]:
    """(early, late) steps: the first and last third of the phase's steps that have tallies."""
    inside = [s for s in sorted(steps) if phase[0] <= s <= phase[1]]
    third = max(len(inside) // 3, 1)
    return inside[:third], inside[-third:]


def evolution(arm: ArmRuns) -> dict[str, Any] | None:
    """Strategy evolution of one arm over its RL steps (all seeds); None when fewer than
    MIN_PARALLEL of its RL rollouts have a valid block (a sequential arm).

    Early and late thirds are taken over the *last phase*: the trailing RL stages that train on
    the same data as the last one (the hard level; a synthetic spec's seed is ignored), so a
    change of level is not read as a change of strategy; `eval.paired.early_late_shift` gives
    their intervals.

    Returns:
        {"per_seed": {seed: {step: tallies}}, "boundaries": [steps where a stage starts],
         "phase": [first, last] step of the last phase, "shift": {figure: early/late/delta}}.
    """
    tallied = step_tallies(arm)
    per_seed = tallied["per_seed"]
    tallies = [t["parallel"] for steps in per_seed.values() for t in steps.values()]
    rollouts = sum(n for _, n in tallies)
    if not rollouts or sum(k for k, _ in tallies) < MIN_PARALLEL * rollouts:
        return None
    shift = {}
    for figure in ("position", *ROLES):
        pairs = []
        for seed, steps in per_seed.items():
            early, late = thirds(steps, tallied["phases"][seed])
            pairs.append(([steps[s][figure] for s in early], [steps[s][figure] for s in late]))
        shift[figure] = paired.early_late_shift(pairs)
    phase = list(tallied["phases"].values())[-1]
    return {"per_seed": per_seed, "boundaries": tallied["boundaries"], "phase": phase,
            "shift": shift}


def write_grid_report(out: str | Path, arms: list[ArmRuns], baseline: str, *, seeds: list[int],
                      grader: str = "", name: str = "grid", timing: dict | None = None,
                      endpoints: list[dict] | None = None, gates: dict | None = None,
                      alpha: float = 0.05, claims: list[dict] | None = None) -> dict[str, Any]:
    """Tables, PNG figures, `report.md` and `results.json` of a finished grid, in `out`.

    Args:
        endpoints, gates, alpha, claims: the grid file's pre-registered comparisons, design
            bounds and claims (`train.grid_prereg`); the verdicts follow `eval.grid_verdicts`
            (a comparison claim's own comparison joins the endpoints), the claims
            `eval.grid_claims`.

    Returns:
        {"table": markdown of the design, main, delta and claims tables, "report", "plots":
         [paths], "result", "verdicts", "design", "claims"}.

    Raises:
        DataError: a missing eval, or arms that cannot be paired with the baseline.
    """
    from parallel_r1.eval import grid_claims, grid_plots, grid_text

    out = Path(out)
    titles = {a.name: a.title for a in arms}
    rows = {a.name: {s: _rows(a.evals[s] / "samples.jsonl", grader) for s in seeds}
            for a in arms}
    mats = {a: cell_matrices([by_seed[s] for s in seeds]) for a, by_seed in rows.items()}
    result = compare_arms(mats, baseline)
    claims = claims or []
    endpoints = grid_claims.with_claims(endpoints or [], claims)
    pairs = list(dict.fromkeys([(a.name, baseline) for a in arms if a.name != baseline]
                               + [(e["arm"], e["against"]) for e in endpoints]))
    design = grid_design.collect(arms, rows, pairs)
    verdicts = grid_verdicts.compare(mats, baseline, endpoints=endpoints, gates=gates or {},
                                     alpha=alpha, design=design)
    evolutions = {a.name: ev for a in arms if (ev := evolution(a)) is not None}
    checked = grid_claims.evaluate(claims, verdicts, design, {a.name: a for a in arms},
                                   gates or {})
    plots = [grid_plots.plot_arms(result, titles, out / "arms.png"),
             grid_plots.plot_deltas(result, titles, out / "deltas.png")]
    plots += [grid_plots.plot_evolution(ev, titles[a], out / f"evolution-{a}.png")
              for a, ev in evolutions.items()]
    if evolutions:
        plots.append(grid_plots.plot_early_late(evolutions, titles, out / "early_late.png"))
    table = grid_text.tables(result, verdicts, design, mats, titles, checked)
    text = grid_text.report_text(name, grader, seeds, timing, table, result, verdicts, titles,
                                 evolutions, plots)
    write_text(out / "table.md", table + "\n")
    write_json(out / "results.json", {
        "result": result, "grader": grader or "eval headline", "seeds": seeds, "timing": timing,
        "verdicts": verdicts, "design": grid_design.as_json(design), "claims": checked,
        "evolution": {a: {"phase": ev["phase"], "shift": ev["shift"]}
                      for a, ev in evolutions.items()}})
    return {"table": table, "report": write_text(out / "report.md", text), "plots": plots,
            "result": result, "verdicts": verdicts, "design": design, "claims": checked}
