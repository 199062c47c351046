"""Design checks of a grid: can a comparison mean anything at all, before any interval is read.

Per arm and seed, from the files its RL stages already write (`metrics.jsonl`, one record per
step; `rollouts.jsonl` with `dump_every: 1`), over the *last RL phase* (the trailing RL stages on
the last stage's data, as `grid_report.evolution` reads it):
- start_accuracy: mean `rollout/accuracy` of the phase's first `START_STEPS` steps;
- zero_adv_share: mean `frac_reward_zero_std` (groups whose rewards all tie: no gradient);
- clip_fraction: mean `clip_ratio/region_mean` (0 when every update is on-policy);
- cap_binding: mean `completions/clipped_ratio` (completions cut by the token cap).
Per benchmark, the chance level: the share of the most common gold answer (the score of always
giving that answer). Per comparison and seed, how often the two arms' RL rollouts (matched by
step and index) and eval samples differ, and how often their rewards differ. Per arm and seed,
from its eval samples, the base skill and block use (`eval.grid_skill`: equation accuracy, paths
that differ, summaries that use a path, verification that changes the answer).

`GATES` are the pre-registered bounds a grid file may set (`gates:`, and per endpoint);
`gate_failures` lists those a comparison fails, and such a comparison is reported
"uninformative" instead of being read. A diagnostic that applies but was not measured (an RL
run that did not log it; an arm whose samples wrote no equation) fails its gate as "not
measured": a bound nobody checked does not hold. Pure Python + numpy; reads files, writes nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from parallel_r1.eval.report import md_table

START_STEPS = 3
# gate name -> (diagnostic, "min" | "max"); run diagnostics apply to each arm of a comparison
# that has RL, "equation_accuracy" to each arm (its eval samples), "over_chance" to accuracy
# columns, "rollouts_differ" to the pair of arms (their last-phase RL rollouts; their eval
# samples where no RL step matches).
GATES = {
    "min_start_accuracy": ("start_accuracy", "min"),
    "max_start_accuracy": ("start_accuracy", "max"),
    "max_zero_adv_share": ("zero_adv_share", "max"),
    "min_clip_fraction": ("clip_fraction", "min"),
    "min_cap_binding": ("cap_binding", "min"),
    "max_cap_binding": ("cap_binding", "max"),
    "min_over_chance": ("over_chance", "min"),
    "min_arm_difference": ("rollouts_differ", "min"),
    "min_equation_accuracy": ("equation_accuracy", "min"),
}
RUN_KEYS = {"start_accuracy": "rollout/accuracy", "zero_adv_share": "frac_reward_zero_std",
            "clip_fraction": "clip_ratio/region_mean", "cap_binding": "completions/clipped_ratio"}


def _level(spec: str) -> str:
    """The data a stage trains on, without the sampling seed of a synthetic spec."""
    head, _, tail = spec.rpartition(":")
    return head if spec.startswith("synthetic:") and tail.isdigit() and head.count(":") >= 2 \
        else spec


def last_phase(stages: list[tuple[Path, int, str]]) -> tuple[int, int]:
    """(index of the first stage of the last phase, its global first step) of an RL chain."""
    levels = [_level(d) for _, _, d in stages]
    first = next((i for i in range(len(stages)) if all(v == levels[-1] for v in levels[i:])), 0)
    return first, 1 + sum(m for _, m, _ in stages[:first])


def _steps(path: Path) -> dict[int, dict]:
    from parallel_r1.eval.analysis import _read_jsonl

    out: dict[int, dict] = {}
    for rec in _read_jsonl(path) if path.is_file() else []:
        if "rollout/accuracy" in rec and "step" in rec:
            out[int(rec["step"])] = rec  # a resumed step: its last record wins
    return out


def run_diagnostics(stages: list[tuple[Path, int, str]]) -> dict[str, float | None] | None:
    """Diagnostics of one (arm, seed) over its last RL phase; None without RL stages.

    Args:
        stages: [(RL stage dir, its max_steps, its data spec)] in training order.

    Returns:
        {"start_accuracy", "zero_adv_share", "clip_fraction", "cap_binding", "accuracy"}:
        fractions, None where the metrics file lacks the key (or has no step).
    """
    if not stages:
        return None
    first, _ = last_phase(stages)
    records = [rec for folder, _, _ in stages[first:]
               for _, rec in sorted(_steps(folder / "metrics.jsonl").items())]

    def mean(key: str, recs: list[dict]) -> float | None:
        values = [float(r[key]) for r in recs if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    out = {name: mean(key, records) for name, key in RUN_KEYS.items()}
    out["start_accuracy"] = mean("rollout/accuracy", records[:START_STEPS])
    out["accuracy"] = mean("rollout/accuracy", records)
    return out


def chance_level(rows: list[dict]) -> float:
    """Share of a benchmark's problems whose gold answer is the most common one (the score of
    answering that constant every time). rows: eval rows of one benchmark (any samples)."""
    golds = {r["problem_id"]: str(r["answer"]).strip() for r in rows}
    return max(Counter(golds.values()).values()) / len(golds) if golds else float("nan")


def _keyed_rollouts(stages: list[tuple[Path, int, str]]) -> dict[tuple, dict]:
    from parallel_r1.eval.analysis import _read_jsonl, last_chunks

    if not stages:
        return {}
    first, start = last_phase(stages)
    out, offset = {}, start - 1
    for folder, max_steps, _ in stages[first:]:
        path = folder / "rollouts.jsonl"
        for row in last_chunks(_read_jsonl(path)) if path.is_file() else []:
            out[(offset + int(row["step"]), int(row.get("index", 0)))] = row
        offset += max_steps
    return out


def _share_differ(a: dict, b: dict, field: str) -> float | None:
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return float(np.mean([a[k].get(field) != b[k].get(field) for k in common]))


def arm_difference(stages_a: list[tuple[Path, int, str]], stages_b: list[tuple[Path, int, str]],
                   samples_a: list[dict], samples_b: list[dict]) -> dict[str, float | None]:
    """How often two arms of one seed did different things.

    Args:
        stages_a, stages_b: each arm's RL stages (as `run_diagnostics`); steps are numbered on
            across stages, and the rollouts of each arm's last RL phase are matched by (step,
            index in the step) (a shared earlier stage is the same by construction).
        samples_a, samples_b: each arm's eval rows, matched by (benchmark, problem, sample).

    Returns:
        {"rollouts_differ", "rewards_differ", "eval_differ"}: shares of matched items whose
        response (or reward) differs; None where nothing could be matched.
    """
    ra, rb = _keyed_rollouts(stages_a), _keyed_rollouts(stages_b)

    def keyed(rows: list[dict]) -> dict[tuple, dict]:
        return {(r["benchmark"], r["problem_id"], r["sample"]): r for r in rows}

    return {"rollouts_differ": _share_differ(ra, rb, "response"),
            "rewards_differ": _share_differ(ra, rb, "reward"),
            "eval_differ": _share_differ(keyed(samples_a), keyed(samples_b), "response")}


def gate_failures(gates: dict[str, float], values: dict[str, list[tuple]]) -> list[str]:
    """The gates a comparison fails, as readable lines.

    Args:
        gates: gate name (a key of `GATES`) -> bound.
        values: diagnostic -> [(whose, value)] or [(whose, None, why)]: each value the gate
            must hold for (e.g. both arms' start accuracy); a None or NaN value was not
            measured (`why`, optional, says what is missing) and fails the gate. A diagnostic
            that does not apply (run diagnostics of an arm without RL) has no entry.

    Returns:
        ["start_accuracy of grpo 0.044 < 0.1", "clip_fraction of s2 not measured (not
        logged)", ...]; empty when every gate holds.
    """
    failed = []
    for name, bound in gates.items():
        diagnostic, kind = GATES[name]
        for whose, value, *why in values.get(diagnostic, []):
            if value is None or not np.isfinite(value):
                failed.append(f"{diagnostic} of {whose} not measured"
                              + (f" ({why[0]})" if why else ""))
            elif (kind == "min" and value < bound) or (kind == "max" and value > bound):
                failed.append(f"{diagnostic} of {whose} {value:.3g} "
                              f"{'<' if kind == 'min' else '>'} {bound:g}")
    return failed


def check_gates(gates: Any, where: str) -> list[tuple[str, str]]:
    """Problems with a `gates:` mapping (unknown names, bounds outside [0, 1]) as
    [(field, message)]; empty when it is fine."""
    if not isinstance(gates, dict):
        return [(where, f"must be a mapping of gate: bound, got {gates!r}")]
    problems = []
    for name, bound in gates.items():
        if name not in GATES:
            problems.append((f"{where}.{name}", f"unknown gate; known: {sorted(GATES)}"))
        elif isinstance(bound, bool) or not isinstance(bound, (int, float)) \
                or not 0 <= bound <= 1:
            problems.append((f"{where}.{name}", f"must be a number in [0, 1], got {bound!r}"))
    return problems

def collect(arms: list[Any], rows: dict[str, dict[int, list[dict]]],
            pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Every diagnostic of a finished grid.

    Args:
        arms: `grid_report.ArmRuns` of every arm. rows: arm -> seed -> its eval rows.
        pairs: (arm, against) comparisons to measure the difference of.

    Returns:
        {"runs": {arm: {seed: run_diagnostics | None}}, "chance": {bench: chance level},
         "pairs": {(arm, against): {seed: arm_difference}},
         "skill": {arm: {seed: grid_skill.skill_diagnostics}}}.
    """
    from parallel_r1.eval.grid_skill import skill_diagnostics

    by_name = {a.name: a for a in arms}
    runs = {a.name: {s: run_diagnostics(a.rl.get(s, [])) for s in a.evals} for a in arms}
    first = next(iter(rows.values()))
    some = next(iter(first.values()))
    chance = {b: chance_level([r for r in some if r["benchmark"] == b])
              for b in sorted({r["benchmark"] for r in some})}
    diffs = {}
    for arm, against in pairs:
        a, b = by_name[arm], by_name[against]
        diffs[(arm, against)] = {s: arm_difference(a.rl.get(s, []), b.rl.get(s, []),
                                                   rows[arm][s], rows[against][s])
                                 for s in a.evals}
    skill = {a.name: {s: skill_diagnostics(rows[a.name][s]) for s in a.evals} for a in arms}
    return {"runs": runs, "chance": chance, "pairs": diffs, "skill": skill}


def _f(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def run_table(design: dict, titles: dict[str, str]) -> str:
    """Per arm and seed (%): start accuracy, zero-advantage share, clip fraction, cap binding,
    accuracy over the last RL phase ("–": no RL, or not logged)."""
    rows = []
    for arm, per_seed in design["runs"].items():
        for seed, d in per_seed.items():
            rows.append([titles.get(arm, arm), seed] + [_f((d or {}).get(k)) for k in (
                "start_accuracy", "accuracy", "zero_adv_share", "clip_fraction", "cap_binding")])
    return md_table(["Arm", "Seed", "Start acc.", "Phase acc.", "Zero-adv. groups",
                     "Clip fraction", "Cap binds"], rows)


def pair_table(design: dict, titles: dict[str, str]) -> str:
    """Per comparison and seed (%): RL rollouts, their rewards and eval samples that differ."""
    rows = []
    for (arm, against), per_seed in design["pairs"].items():
        for seed, d in per_seed.items():
            rows.append([f"{titles.get(arm, arm)} vs {titles.get(against, against)}", seed]
                        + [_f(d[k]) for k in ("rollouts_differ", "rewards_differ",
                                              "eval_differ")])
    return md_table(["Arms", "Seed", "RL rollouts differ", "RL rewards differ",
                     "Eval samples differ"], rows)


def chance_table(design: dict, mats: dict[str, dict], titles: dict[str, str],
                 bench_info: dict[str, dict]) -> str:
    """Per benchmark: the chance level (a constant answer's score) and each arm's Mean@k (%)."""
    benches = list(design["chance"])
    rows = [["constant answer (chance)"] + [_f(design["chance"][b]) for b in benches]]
    rows += [[titles.get(a, a)] + [_f(float(m[b]["mean"].mean())) for b in benches]
             for a, m in mats.items()]
    return md_table(["Mean@k (%)"] + [f"{bench_info[b]['title']}" for b in benches], rows)


def as_json(design: dict) -> dict:
    """`collect`'s output with string keys ("arm vs against") for results.json."""
    return {"runs": design["runs"], "chance": design["chance"], "skill": design["skill"],
            "pairs": {f"{a} vs {b}": v for (a, b), v in design["pairs"].items()}}
