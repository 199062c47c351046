"""Run a recipe's stages in order and resume where a run stopped.

Run dir layout: `state.json` (stages done, their outputs), and per stage `<i>-<name>/` with the
trainer's `checkpoint-N/` dirs, `metrics.jsonl`, and `model/` (the stage's output). A rerun skips
finished stages and resumes an unfinished one from its last checkpoint through the Trainer's own
`resume_from_checkpoint` (model, optimiser, scheduler, RNG and data position).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from parallel_r1.train.recipe import Recipe, Stage

STATE_FILE = "state.json"


def read_state(run_dir: Path) -> dict[str, Any]:
    """The run's state ({"stages": {name: {...}}}), empty when the run is new."""
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"stages": {}}


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (temp file + rename), from the main process only."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from parallel_r1.files import write_text_atomic

    write_text_atomic(run_dir / STATE_FILE, json.dumps(state, indent=2, sort_keys=True,
                                                       default=str) + "\n")


def last_checkpoint(stage_dir: Path) -> str | None:
    """The newest complete `checkpoint-N` dir of a stage (one with trainer_state.json), or None."""
    done = [p for p in stage_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1])))


def load_model(recipe: Recipe, source: str | None) -> tuple[Any, Any]:
    """The starting model (`source`, else the recipe's model) and its tokenizer."""
    from parallel_r1.models import PREPARERS, add_tags, build_tiny
    from parallel_r1.models import load as load_pretrained

    spec = recipe.model
    if source is None and spec.name == "tiny":
        return build_tiny(recipe.seed, num_layers=spec.tiny_layers, hidden=spec.tiny_hidden)
    name = source or spec.name
    if source is None and name in PREPARERS:  # e.g. smollm2-135m-instruct, prepared once, cached
        from parallel_r1.models import prepared_dir

        name = str(prepared_dir())
    model, tok = load_pretrained(name, dtype=spec.dtype)
    add_tags(model, tok)
    return model, tok


def _say(message: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[parallel-r1] {message}", file=sys.stderr, flush=True)


def run(recipe: Recipe, *, stop_after: str | None = None) -> dict[str, Any]:
    """Run every unfinished stage; returns the final state.

    Args:
        stop_after: stop once this stage is done (tests).
    """
    run_dir = Path(recipe.output_dir)
    state = read_state(run_dir)
    source = None  # the latest model-producing stage's output
    for i, stage in enumerate(recipe.stages):
        record = state["stages"].get(stage.name)
        if record and record.get("status") == "done":
            source = record.get("model", source)
            continue
        stage_dir = run_dir / f"{i}-{stage.name}"
        resume = last_checkpoint(stage_dir)
        state["stages"][stage.name] = {"status": "running", "kind": stage.kind,
                                       "resumed_from": resume,
                                       "runs": (record or {}).get("runs", 0) + 1}
        write_state(run_dir, state)
        _say(f"stage {i + 1}/{len(recipe.stages)}: {stage.name} ({stage.kind})"
             + (f", resuming from {resume}" if resume else ""))
        started = time.monotonic()
        result = run_stage(recipe, stage, stage_dir, source, resume)
        _say(f"stage {stage.name} done in {time.monotonic() - started:.0f} s -> {stage_dir}")
        state["stages"][stage.name].update(status="done", **result)
        source = result.get("model", source)
        write_state(run_dir, state)
        if stop_after == stage.name:
            break
    return state


def run_stage(recipe: Recipe, stage: Stage, stage_dir: Path, source: str | None,
              resume: str | None) -> dict[str, Any]:
    """One stage from `source` (None: the recipe's model); returns its state record."""
    from parallel_r1.train import stages

    model, tok = load_model(recipe, source)
    if stage.kind == "eval":
        result = stages.run_eval(model, tok, stage, stage_dir, recipe.seed)
        stages.card_eval(source, stage, stage_dir)
        return result
    fn = stages.run_sft if stage.kind == "sft" else stages.run_rl
    model, metrics = fn(model, tok, stage, stage_dir, recipe, resume, source)
    out = stage_dir / "model"
    if int(os.environ.get("RANK", "0")) == 0:
        from parallel_r1.models import save

        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        save(model, tok, out, meta=stages.card_meta(recipe, stage, source))
    _barrier()
    return {"model": str(out), "metrics": metrics}


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
