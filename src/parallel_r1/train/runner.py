"""Run a recipe's stages in order and resume where a run stopped.

Run dir layout: `state.json` (stages done, their outputs), and per stage `<i>-<name>/` with the
trainer's `checkpoint-N/` dirs, `metrics.jsonl`, and `model/` (the stage's output). A rerun skips
finished stages and resumes an unfinished one from its last complete checkpoint through the
Trainer's own `resume_from_checkpoint` (model, optimiser, scheduler, RNG and data position), its
logs trimmed to that step. One process writes a run dir at a time (`files.one_writer`), and only
a folder of ours (`outputs.claim`); what a killed writer of ours left half-written is removed
first, and every stage's inputs are resolved before the first stage starts (`train.preflight`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from parallel_r1.train.distributed import rank
from parallel_r1.train.recipe import Recipe, Stage

STATE_FILE = "state.json"


def read_state(run_dir: Path) -> dict[str, Any]:
    """The run's state ({"stages": {name: {...}}}), empty when the run is new.

    Raises:
        DataError: the state file does not parse (it is written atomically, so only a hand edit
            or a failing disk does that).
    """
    from parallel_r1.errors import DataError

    path = run_dir / STATE_FILE
    if not path.is_file():
        return {"stages": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(state, dict) and isinstance(state.get("stages"), dict):
            return state
    except (OSError, ValueError):
        pass
    raise DataError("the run state does not parse; restore it or move the run dir away",
                    file=str(path))


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (temp file + rename), from the main process only."""
    if rank() != 0:
        return
    from parallel_r1.files import write_text_atomic

    write_text_atomic(run_dir / STATE_FILE, json.dumps(state, indent=2, sort_keys=True,
                                                       default=str) + "\n")


def last_checkpoint(stage_dir: Path) -> str | None:
    """The newest `checkpoint-N` dir of a stage that reads back (broken newer ones are removed,
    with one line each on stderr), or None."""
    from parallel_r1.train.checkpoint import resume_point

    return resume_point(stage_dir, _say)


def load_model(recipe: Recipe, source: str | None) -> tuple[Any, Any]:
    """The starting model (`source`, else the recipe's model) and its tokenizer."""
    from parallel_r1.models import PREPARERS, add_tags, build_tiny
    from parallel_r1.models import load as load_pretrained

    spec = recipe.model
    if source is None and spec.name == "tiny":
        return build_tiny(recipe.seed, num_layers=spec.tiny_layers, hidden=spec.tiny_hidden,
                          digits=spec.tiny_digits)
    name = source or spec.name
    if source is None and name in PREPARERS:  # e.g. smollm2-135m-instruct, prepared once, cached
        from parallel_r1.models import prepared_dir

        name = str(prepared_dir())
    model, tok = load_pretrained(name, dtype=spec.dtype)
    add_tags(model, tok)
    return model, tok


def _say(message: str) -> None:
    if rank() == 0:
        print(f"[parallel-r1] {message}", file=sys.stderr, flush=True)


def run(recipe: Recipe, *, stop_after: str | None = None,
        out_option: str = "output_dir=DIR") -> dict[str, Any]:
    """Run every unfinished stage, holding the run dir's writer lock; returns the final state.

    Args:
        stop_after: stop once this stage is done (tests).
        out_option: how the user of this command names another output folder ("--out DIR"
            for `demo`), for the hint when a finished stage's settings changed.
    Raises:
        WriterLockedError: another process is writing this run dir (nothing was touched).
        ForeignFolderError: the run dir holds files parallel-r1 did not write (nothing was
            touched).
        ConfigError / DataError: a stage's inputs do not resolve (before any stage runs).
        DiskFullError: the disk filled up (names the path; a rerun resumes).
    """
    from parallel_r1.files import command_line, one_writer
    from parallel_r1.outputs import output_path

    run_dir = output_path(recipe.output_dir)  # a Recipe built in code gets the same folder
    with one_writer(run_dir, command_line()):
        return _run_locked(recipe, run_dir, stop_after, out_option)


def _run_locked(recipe: Recipe, run_dir: Path, stop_after: str | None,
                out_option: str) -> dict[str, Any]:
    from parallel_r1.files import writing
    from parallel_r1.outputs import remove_temporaries
    from parallel_r1.train.preflight import check_recipe

    main = rank() == 0
    for path in remove_temporaries(run_dir) if main else []:
        _say(f"removed {path}, left half-written by a killed run")
    state = read_state(run_dir)
    todo = [i for i, s in enumerate(recipe.stages)
            if (state["stages"].get(s.name) or {}).get("status") != "done"]
    check_recipe(recipe, todo)
    if main:
        _say_what_is_kept(recipe, state, todo, run_dir, out_option)
    source = None  # the latest model-producing stage's output
    for i, stage in enumerate(recipe.stages):
        record = state["stages"].get(stage.name)
        if i not in todo:
            source = record.get("model", source)
            continue
        stage_dir = run_dir / f"{i}-{stage.name}"
        resume = last_checkpoint(stage_dir) if main else _newest(stage_dir)
        if main:
            _trim_logs(stage_dir, resume)
        state["stages"][stage.name] = {"status": "running", "kind": stage.kind,
                                       "settings": _settings(recipe, stage),
                                       "resumed_from": resume,
                                       "runs": (record or {}).get("runs", 0) + 1}
        write_state(run_dir, state)
        _say(f"stage {i + 1}/{len(recipe.stages)}: {stage.name} ({stage.kind})"
             + (f", resuming from {resume}" if resume else ""))
        started = time.monotonic()
        with writing(stage_dir):
            result = run_stage(recipe, stage, stage_dir, source, resume)
        _say(f"stage {stage.name} done in {time.monotonic() - started:.0f} s -> {stage_dir}")
        state["stages"][stage.name].update(status="done", **result)
        source = result.get("model", source)
        write_state(run_dir, state)
        if stop_after == stage.name:
            break
    return state


def _settings(recipe: Recipe, stage: Any) -> dict[str, Any]:
    """What a stage's result depends on, as recorded in state.json (compared on a rerun)."""
    fields = {f.name: getattr(stage, f.name) for f in dataclasses.fields(stage) if f.init}
    return json.loads(json.dumps({**fields, "seed": recipe.seed}, default=str))


def _say_what_is_kept(recipe: Recipe, state: dict, todo: list[int], run_dir: Path,
                      out_option: str) -> None:
    """One line per finished stage whose recipe settings changed since it ran (its result is
    kept, not redone), and one line when nothing is left to run."""
    for i, stage in enumerate(recipe.stages):
        old = (state["stages"].get(stage.name) or {}).get("settings")
        if i in todo or old is None:
            continue
        new = _settings(recipe, stage)
        changed = [f"{k} {old.get(k)!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
        if changed:
            _say(f"stage {stage.name} is done and is kept as it ran, although the recipe changed "
                 f"since ({'; '.join(changed[:3])}); to run the changed recipe, give it a new "
                 f"output folder: {out_option}")
    if not todo:
        _say(f"every stage is done; nothing to run (results in {run_dir})")


def _newest(stage_dir: Path) -> str | None:
    """Other ranks: the checkpoint rank 0 picks (it removes broken ones; this reads the same)."""
    from parallel_r1.train.checkpoint import checkpoint_problem

    found = [p for p in stage_dir.glob("checkpoint-*") if checkpoint_problem(p) is None]
    return str(max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))) if found else None


def _trim_logs(stage_dir: Path, resume: str | None) -> None:
    from parallel_r1.train.checkpoint import is_final, trim_step_logs

    step = int(resume.rsplit("-", 1)[1]) if resume else 0
    removed = trim_step_logs(stage_dir, step, final=bool(resume) and is_final(resume))
    if removed:
        _say(f"{'resuming at step ' + str(step) if step else 'restarting'}: removed log rows "
             "written after it (" + ", ".join(f"{n} in {name}" for name, n in removed.items())
             + ")")


def run_stage(recipe: Recipe, stage: Stage, stage_dir: Path, source: str | None,
              resume: str | None) -> dict[str, Any]:
    """One stage from `source` (None: the recipe's model); returns its state record."""
    from parallel_r1.train import stages
    from parallel_r1.train.checkpoint import final_metrics, is_final, load_final

    model, tok = load_model(recipe, source)
    if stage.kind == "eval":
        stage = stages.eval_stage_on(recipe, stage, source)
        result = stages.run_eval(model, tok, stage, stage_dir, recipe.seed)
        stages.card_eval(source, stage, stage_dir)
        return result
    if resume and is_final(resume):  # trained to the end; killed before the model was saved
        _say(f"{resume} is the last step: taking the trained model from it")
        model, metrics = load_final(model, resume), final_metrics(stage_dir)
    else:
        fn = stages.run_sft if stage.kind == "sft" else stages.run_rl
        model, metrics = fn(model, tok, stage, stage_dir, recipe, resume, source)
        if resume:  # the trainer's summary covers this call; the log's the whole run (logs.py)
            logged = final_metrics(stage_dir)
            metrics = {k: logged.get(k, v) for k, v in metrics.items()}
    out = stage_dir / "model"
    from parallel_r1.train.distributed import full_state_dict

    weights = full_state_dict(model)  # every process: FSDP gathers the full weights on rank 0
    if rank() == 0:
        from parallel_r1.models import save

        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        save(model, tok, out, meta=stages.card_meta(recipe, stage, source), state_dict=weights)
    _barrier()
    return {"model": str(out), "metrics": metrics}


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
