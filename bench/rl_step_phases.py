"""Where an RL step's time goes: the phase breakdown of a recipe's rl stage, and what the
engine/trainer log-prob check would cost as an extra forward pass.

    .venv/bin/python bench/rl_step_phases.py recipes/cpu-demo.yaml --from runs/cpu-demo/1-sft/model
    .venv/bin/python bench/rl_step_phases.py recipes/smollm2-cpu.yaml --steps 2 \\
        stages.rl.per_device_batch_size=8

Runs `--steps` optimiser steps of the recipe's rl stage (from `--from`, else the recipe's own
model) through the ordinary stage code, reads the per-step `time/<phase>_s` records it writes,
then times `ParallelGRPOTrainer.logprob_gap` (the extra eval-mode forward pass the check cost
every step before it was read off the loss's forward) on the last generation batch. Writes
bench/results/rl_step_phases_<recipe>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from parallel_r1.train import stages
from parallel_r1.train.phases import PHASES
from parallel_r1.train.recipe import load
from parallel_r1.train.runner import load_model

RESULTS = Path(__file__).resolve().parent / "results"


def run(recipe_path: str, overrides: list[str], steps: int, source: str | None) -> dict:
    """Train `steps` steps of the rl stage; returns the per-step records and the check's cost."""
    out = Path(tempfile.mkdtemp(prefix="rl-phases-"))
    recipe = load(recipe_path, [*overrides, f"output_dir={out}", f"stages.rl.max_steps={steps}",
                                f"stages.rl.save_steps={steps}"])
    stage = next(s for s in recipe.stages if s.kind == "rl")
    model, tok = load_model(recipe, source)
    trainer = stages.build_rl(model, tok, stage, out, recipe, source)
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    checks = []
    for batch in trainer._buffered_inputs:  # the last generation batch, as micro-batches
        tick = time.perf_counter()
        trainer.logprob_gap(batch)
        checks.append(time.perf_counter() - tick)
    return {"recipe": recipe.name, "overrides": overrides, "steps": steps, "wall_s": wall,
            "threads": torch.get_num_threads(), "machine": platform.processor() or "cpu",
            "records": [r for r in rows if "train_runtime" not in r],
            "end": next((r for r in rows if "train_runtime" in r), {}),
            "explicit_check_s": sum(checks)}


def table(result: dict) -> str:
    """Markdown: seconds per phase of each step, the mean share, and the check's saving."""
    recs = result["records"]
    names = [*PHASES, "other"]
    head = ["phase", *(f"step {r['step']} (s)" for r in recs), "share"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total = sum(r["time/step_s"] for r in recs)
    for p in names:
        secs = [r[f"time/{p}_s"] for r in recs]
        lines.append(f"| {p} | " + " | ".join(f"{s:.3f}" for s in secs)
                     + f" | {sum(secs) / total:.1%} |")
    lines.append("| **step** | " + " | ".join(f"{r['time/step_s']:.3f}" for r in recs)
                 + " | 100% |")
    end = result["end"].get("time/end/checkpoint_s")
    mean_step = total / len(recs)
    check = result["explicit_check_s"]
    notes = [f"Final checkpoint after the last step: {end:.3f} s." if end else "",
             f"The log-prob check as an extra forward pass (before this change, every step): "
             f"{check:.3f} s = {check / mean_step:.1%} of a mean step ({mean_step:.3f} s); "
             f"read off the loss's forward it costs "
             f"{sum(r['time/logprob_check_s'] for r in recs) / len(recs):.4f} s per step."]
    return "\n".join(lines) + "\n\n" + "\n".join(n for n in notes if n) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the recipe")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--from", dest="source", default=None, help="start from this model dir")
    parser.add_argument("--name", default=None, help="results file suffix (default: recipe)")
    args = parser.parse_args()
    result = run(args.recipe, args.overrides, args.steps, args.source)
    name = args.name or result["recipe"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"rl_step_phases_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = (f"# RL step phases: {name}\n\n`{' '.join(['bench/rl_step_phases.py', args.recipe, *args.overrides])}`"
            f" ({args.steps} steps, {result['threads']} threads)\n\n" + table(result))
    (RESULTS / f"rl_step_phases_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
