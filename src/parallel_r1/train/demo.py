"""The built-in demo: the whole method offline on a CPU in minutes, nothing to download.

It runs the packaged recipe `cpu-demo.yaml` (a tiny model; the offline synthetic task; an eval;
structured SFT on synthetic cold-start traces; an eval; GRPO with the paper's alternating reward;
an eval) through the ordinary recipe runner, then writes one comparison table of the evals and
the training plots and report of the RL stage. Rerunning it resumes where it stopped.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

# The smallest sizes that still run every stage (tests, a first look): seconds, not minutes.
QUICK = ["model.tiny_layers=2", "model.tiny_hidden=64",
         "stages.sft.data=synthetic:1:32:0", "stages.sft.max_steps=8",
         "stages.rl.max_steps=2", "stages.rl.per_device_batch_size=16", "stages.rl.save_steps=1",
         "stages.rl.dump_every=1",
         *(f"stages.{s}.eval={{benchmarks: synthetic-l1, samples: 2, limit: 4, max_tokens: 60, "
           f"max_path_tokens: 20, graders: [math-verify, paper]}}" for s in ("eval-base", "eval-sft", "eval-rl"))]


def recipe_path() -> Path:
    """The packaged demo recipe (also at recipes/cpu-demo.yaml in the repository)."""
    return Path(str(resources.files("parallel_r1") / "recipes" / "cpu-demo.yaml"))


def run_demo(out: str | Path, *, quick: bool = False, overrides: list[str] | None = None
             ) -> dict[str, Any]:
    """Run the demo into `out`; returns {"table", "table_path", "plots", "report", "seconds"}."""
    from parallel_r1.eval.analysis import analyze_run
    from parallel_r1.eval.compare import compare_table
    from parallel_r1.eval.report import write_text
    from parallel_r1.files import command_line
    from parallel_r1.outputs import claim, output_path
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    out = claim(output_path(out), command_line())  # its table and plots go beside the run
    started = time.monotonic()
    extra = (QUICK if quick else []) + list(overrides or []) + [f"output_dir={out / 'run'}"]
    recipe = load(recipe_path(), extra)
    run(recipe, out_option="--out DIR")
    stage_dirs = {s.name: out / "run" / f"{i}-{s.name}" for i, s in enumerate(recipe.stages)}
    evals = [stage_dirs[s.name] for s in recipe.stages if s.kind == "eval"]
    table = compare_table(evals)
    table_path = out / "table.md"
    write_text(table_path, table + "\n")
    rl = next(stage_dirs[s.name] for s in recipe.stages if s.kind == "rl")
    analysis = analyze_run(rl, out / "analysis")
    return {"table": table, "table_path": table_path, "plots": analysis["plots"],
            "report": analysis.get("report"), "seconds": time.monotonic() - started}
