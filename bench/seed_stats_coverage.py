"""Coverage of a grid's delta intervals in simulation: the per-seed paired t-interval
(`eval.seed_stats`) against the crossed bootstrap over seeds and problems (`eval.paired`).

    .venv/bin/python bench/seed_stats_coverage.py

Two arms on 100 problems x 4 samples (Mean@4 cells), each (arm, seed) run shifted by an arm x seed
logit effect of SD 0, 0.3 or 0.5, with no true difference (a miss is a false positive) and with
a logit effect of 0.3 (a miss of the true expected difference). 4000 reps for the t-interval,
1000 for the bootstrap (2000 resamples each). Writes bench/results/seed_stats_coverage.json and
.md. Seeded: the same numbers every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from parallel_r1.eval.paired import paired_delta
from parallel_r1.eval.seed_stats import seed_intervals, simulate_arms

RESULTS = Path(__file__).resolve().parent / "results"
T_REPS, BOOT_REPS = 4000, 1000


def miss_rates(num_seeds: int, seed_sd: float, effect: float) -> dict[str, float]:
    """Share of reps whose 95% interval misses the true difference, for both methods."""
    rng = np.random.default_rng([num_seeds, int(100 * seed_sd), int(100 * effect)])
    arm, base, truth = simulate_arms(rng, num_reps=T_REPS, num_seeds=num_seeds, seed_sd=seed_sd,
                                     effect=effect)
    _, low, high, _, _ = seed_intervals((arm - base).mean(axis=2))
    t_miss = float(np.mean((truth < low) | (truth > high)))
    boot = [paired_delta([a], [b], seed=i) for i, (a, b) in
            enumerate(zip(arm[:BOOT_REPS], base[:BOOT_REPS]))]
    boot_miss = float(np.mean([not f["low"] <= t <= f["high"]
                               for f, t in zip(boot, truth[:BOOT_REPS])]))
    return {"t_miss": t_miss, "bootstrap_miss": boot_miss}


def main() -> None:
    """Every (seeds, seed SD, effect) cell; the JSON and markdown results."""
    rows = []
    for num_seeds in (3, 5):
        for seed_sd in (0.0, 0.3, 0.5):
            for effect in (0.0, 0.3):
                rows.append({"seeds": num_seeds, "seed_sd": seed_sd, "effect": effect,
                             **miss_rates(num_seeds, seed_sd, effect)})
                print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "seed_stats_coverage.json").write_text(json.dumps(
        {"t_reps": T_REPS, "bootstrap_reps": BOOT_REPS, "rows": rows}, indent=2) + "\n")
    lines = ["Share of nominal 95% intervals that miss the true arm - baseline difference "
             f"(100 problems x 4 samples; {T_REPS} reps for t, {BOOT_REPS} for the bootstrap; "
             "effect 0: a miss is a false positive).", "",
             "| seeds | arm x seed logit SD | logit effect | t on seeds | crossed bootstrap |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['seeds']} | {r['seed_sd']} | {r['effect']} | {100 * r['t_miss']:.1f}% | "
              f"{100 * r['bootstrap_miss']:.1f}% |" for r in rows]
    (RESULTS / "seed_stats_coverage.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
