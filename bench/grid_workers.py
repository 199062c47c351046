"""Grid throughput on this CPU: 2 workers x 1 torch thread against 1 worker x 2 threads.

    flock /tmp/heavy.lock .venv/bin/python bench/grid_workers.py

Runs the same small grid (the mini grid's parallel recipe, 2 seeds: SFT, stage-1 RL, an eval;
fewer steps) from scratch under each setting, printing each run as it ends, and reports the wall
times and their ratio. Writes bench/results/grid_workers.json and .md. The machine is shared, so read the ratio
of one run, not the seconds.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from parallel_r1.train.grid import load_grid, mini_grid_path, plan
from parallel_r1.train.grid_runner import run_grid

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = (("2 workers x 1 thread", 2, 1), ("1 worker x 2 threads", 1, 2))
SMALL = ["stages.base.max_steps=60", "stages.sft.max_steps=60", "stages.rl-easy.max_steps=3",
         "stages.eval.eval={benchmarks: synthetic-fork1, samples: 4, limit: 16, max_tokens: 124, "
         "max_path_tokens: 24, graders: [paper]}"]


def one(folder: Path, jobs: int, threads: int) -> float:
    """Wall seconds of the small grid in a fresh `folder`."""
    grid = load_grid(mini_grid_path(), [f"output_dir={folder}", "seeds=[0, 1]", f"jobs={jobs}",
                                        f"threads={threads}", "overrides=" + json.dumps(SMALL)])
    grid.arms = [a for a in grid.arms if a.name == "sft-unseen"] + [
        a for a in grid.arms if a.name == "r1-s1"]
    grid.baseline = "sft-unseen"
    for arm in grid.arms:
        arm.stages = (["base", "sft", "eval"] if arm.name == "sft-unseen"
                      else ["base", "sft", "rl-easy", "eval"])
    started = time.monotonic()
    run_grid(grid, plan(grid), progress=False)
    return time.monotonic() - started


def main() -> None:
    """Measure each setting once (2 x 1 first); write the JSON and markdown results."""
    walls: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
    for _ in range(1):  # one round: on a busy machine 2 threads can be very slow
        for name, jobs, threads in SETTINGS:
            folder = Path(tempfile.mkdtemp(prefix="grid-bench-"))
            try:
                walls[name].append(one(folder, jobs, threads))
                print(f"{name}: {walls[name][-1]:.0f} s", flush=True)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    best = {name: min(v) for name, v in walls.items()}
    ratio = best[SETTINGS[1][0]] / best[SETTINGS[0][0]]
    result = {"machine": platform.processor() or platform.machine(), "walls_s": walls,
              "best_s": best, "ratio_1x2_over_2x1": ratio}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grid_workers.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| setting | wall (s) |", "|---|---|"]
    lines += [f"| {name} | {best[name]:.0f} |" for name, _, _ in SETTINGS]
    lines.append(f"\n1 worker x 2 threads takes {ratio:.2f}x the wall time of 2 workers x 1 "
                 "thread (small grid: 2 seeds x SFT 60 steps, RL 3 steps, evals).")
    (RESULTS / "grid_workers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
