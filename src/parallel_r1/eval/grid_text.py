"""The text of a grid's report: the design checks first, then the tables, the verdicts, the noise
and the strategy evolution (markdown; numbers from `grid_report`, `grid_design`,
`grid_verdicts`). Pure Python + numpy."""

from __future__ import annotations

import numpy as np

from parallel_r1.eval import grid_claims, grid_design, grid_skill, grid_verdicts, paired
from parallel_r1.eval.grid_report import delta_table, main_table
from parallel_r1.eval.report import md_table

LEGEND = ("H = significant after Holm across the tested family; U = uninformative (a "
          "pre-registered gate failed, or the seeds agree exactly (SD 0): not tested); an "
          "interval alone is exploratory")


def tables(result: dict, verdicts: dict, design: dict, mats: dict, titles: dict[str, str],
           claims: list[dict] | None = None) -> str:
    """What the grid prints: design checks, main table, per-seed deltas, the tested family, the
    claims (`eval.grid_claims`) when the grid file has any."""
    bench_info, baseline = result["benchmarks"], result["baseline"]
    claim_lines = ["", "The paper's claims, pre-registered in the grid file. "
                   + grid_claims.DEFINITIONS, "",
                   grid_claims.claims_table(claims, titles)] if claims else []
    return "\n".join([
        "Design checks (before any verdict). RL diagnostics over each arm's last RL phase, %:",
        "", grid_design.run_table(design, titles), "",
        "Base skill and block use on each arm's eval samples: share of written equations "
        "(a op b = c, chains) that are right, %; of blocks where two paths reach a result, "
        "the share whose paths reach different results; of blocks with a summary, the share "
        "whose summary states a path's result; of verification blocks, the share whose "
        "summary's number differs from the last number before the block:", "",
        grid_skill.skill_table(design["skill"], titles), "",
        "How often the arms of a comparison did different things, %:", "",
        grid_design.pair_table(design, titles), "",
        "Chance level (always giving the most common gold answer) against each arm, %:", "",
        grid_design.chance_table(design, mats, titles, bench_info), "",
        "Mean@k / Pass@k and parallel ratio in %, [95% interval resampling seeds and problems]",
        "", main_table(result, titles), "",
        f"Paired deltas to {titles[baseline]} in points, [95% t-interval over seeds: the mean "
        f"of the per-seed paired differences, S - 1 degrees of freedom]; {LEGEND}", "",
        grid_verdicts.delta_table(verdicts, bench_info, titles, baseline), "",
        grid_verdicts.mde_line(verdicts, bench_info, baseline), "",
        f"The tested family ({verdicts['family_size']} comparisons tested, Holm at "
        f"{verdicts['alpha']:g}; " + ("the primary endpoints pre-registered in the grid file):"
                                      if verdicts["preregistered"] else "no endpoints in the "
                                      "grid file: every arm against the baseline, every "
                                      "column):"), "",
        grid_verdicts.family_table(verdicts, bench_info, titles), *claim_lines])


def verdict_lines(verdicts: dict, bench_info: dict, titles: dict[str, str]) -> list[str]:
    """One line per primary comparison: its verdict."""
    return [f"- {titles.get(c['arm'], c['arm'])} - {titles.get(c['against'], c['against'])}, "
            f"{grid_verdicts.column_title(c['column'], bench_info)}: "
            f"{grid_verdicts.cell(c)}: {c['verdict']}"
            for c in verdicts["comparisons"] if c["primary"]]


def noise_table(result: dict, titles: dict[str, str]) -> str:
    """Where the variance of Mean@k comes from: sd between seeds, between problems, residual."""
    rows = []
    for arm, e in result["arms"].items():
        for b, fig in e["bench"].items():
            n = fig.get("noise")
            if n:
                rows.append([titles.get(arm, arm), result["benchmarks"][b]["title"]]
                            + [f"{100 * np.sqrt(n[k]):.1f}" for k in (
                                "var_seed", "var_problem", "var_resid")] + [f"{100 * n['se']:.1f}"])
    return md_table(["Arm", "Benchmark", "sd seeds", "sd problems", "sd residual",
                     "se of Mean@k"], rows)


def seed_table(result: dict, titles: dict[str, str], seeds: list[int]) -> str:
    """Each seed's Avg Mean@k per arm (%), to show the seed-to-seed spread plainly."""
    rows = [[titles.get(arm, arm)] + [f"{100 * v:.1f}" for v in e["per_seed_avg"]]
            for arm, e in result["arms"].items()]
    return md_table(["Arm"] + [f"seed {s}" for s in seeds], rows)


def shift_table(evolutions: dict[str, dict], titles: dict[str, str]) -> str:
    """Early vs late third of the last RL phase: block position and role shares, with deltas."""
    rows = []
    for arm, ev in evolutions.items():
        for figure, label in (("position", "block position (0 start, 1 end)"),
                              ("exploration", "exploration share"),
                              ("verification", "verification share")):
            s = ev["shift"][figure]
            rows.append([titles.get(arm, arm), label, _num(s["early"]), _num(s["late"]),
                         _num(s["delta"], signed=True)
                         + (" *" if paired.is_resolved(s["delta"]) else "")])
    return md_table(["Arm", "Figure", "Early third", "Late third", "Late - early"], rows)


def _num(fig: dict, signed: bool = False) -> str:
    if not np.isfinite(fig["value"]):
        return "–"
    f = "+.3f" if signed else ".3f"
    return f"{fig['value']:{f}} [{fig['low']:{f}}, {fig['high']:{f}}]"


def report_text(name: str, grader: str, seeds: list[int], timing: dict | None, table: str,
                result: dict, verdicts: dict, titles: dict[str, str], evolutions: dict,
                plots: list) -> str:
    """The whole `report.md`."""
    lines = [f"# Grid {name}", "",
             f"Seeds {seeds}; grader: {grader or 'each eval headline grader'}; baseline: "
             f"{titles[result['baseline']]}."]
    if timing:
        lines.append(f"Wall time of the runs: {timing.get('wall_s', 0) / 60:.1f} min over "
                     f"{timing.get('sessions', 1)} session(s); compute "
                     f"{timing.get('compute_s', 0) / 60:.1f} min in {timing.get('nodes', 0)} "
                     "nodes.")
        codes, gits = timing.get("source_hash") or [], timing.get("git") or []
        what = "source hash (sha256 of the parallel_r1 .py files, not a git commit)"
        lines.append(f"The {what} of every node: {codes[0]}" if len(codes) == 1 else
                     f"**Nodes ran under {len(codes)} different sources ({what}: "
                     f"{', '.join(codes)}): numbers may mix code changes; rerun in a fresh "
                     "folder to be sure.**")
        lines[-1] += (f"; git commit{'s' if len(gits) > 1 else ''} of the sessions: "
                      f"{', '.join(gits)}." if gits else "; no git checkout recorded.")
    lines += ["", table, "", "Verdicts of the primary comparisons:", "",
              *verdict_lines(verdicts, result["benchmarks"], titles), "",
              "## Noise", "",
              "The seed is the unit of training variance: the delta intervals above are "
              "t-intervals on the per-seed paired means (`eval.seed_stats`). For comparison "
              "only, the crossed bootstrap over seeds and problems (`eval.paired`, 2000 "
              "resamples; also the main table's and `deltas.png`'s intervals), which "
              "over-counts per-sample noise and under-counts seed-to-seed variance (a nominal "
              "95% interval that misses 10-19% of the time with 3 seeds when arms vary by "
              "seed, `bench/results/seed_stats_coverage.md`); * = its interval excludes 0:", "",
              delta_table(result, titles), "",
              "Where the variance of Mean@k comes from (two-way ANOVA, percentage points):", "",
              noise_table(result, titles), "", "Avg Mean@k of each seed (%):", "",
              seed_table(result, titles, seeds), ""]
    if evolutions:
        lines += ["## Strategy evolution", "",
                  "Over the last RL phase (the trailing RL stages on the last stage's data): "
                  "first third of its steps against the last third; intervals resample seeds, "
                  "then steps within each seed. Block roles by "
                  "`parallel_r1.eval.analysis.classify_block`.", "",
                  shift_table(evolutions, titles), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"
