"""Data commands: `data list | prepare | synthetic | coldstart | postprocess`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from parallel_r1.cli.data_dir import DataDir, use_data_dir

data_app = typer.Typer(help="Data sets, prompts, teacher cold-start traces, the synthetic task.",
                       no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.add_typer(data_app, name="data")


def _echo(metrics: dict) -> None:
    typer.echo(json.dumps(metrics, indent=2, ensure_ascii=False))


@data_app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """Print each named data set, its splits and where each split resolves."""
    from parallel_r1.data.sources import DATASETS, resolve

    use_data_dir(data_dir)
    for name in DATASETS.names():
        for split in DATASETS.get(name).splits:
            kind, where = resolve(name, split=split, local_dir=data_dir)
            typer.echo(f"{name:18s} {split:6s} {kind:8s} {where}")


@data_app.command("prepare")
def prepare(
    name: str = typer.Argument(..., help="Data set name (see `data list`) or a local file/dir."),
    out: Path = typer.Argument(..., help="Output JSONL (written atomically)."),
    split: str | None = typer.Option(None, help="Split (default: the set's first)."),
    template: str = typer.Option("parallel", help="Template name or a file with {problem}."),
    limit: int | None = typer.Option(None, help="Keep only the first N records."),
    drop_suspect: bool = typer.Option(False, help="Drop records flagged suspect_truncated."),
    data_dir: DataDir = None,
) -> None:
    """Load a data set and write one JSONL row per record with its rendered prompt."""
    from parallel_r1.data.templates import prepare as prepare_prompts

    use_data_dir(data_dir)
    _echo(prepare_prompts(name, out, split=split, template=template, limit=limit,
                          drop_suspect=drop_suspect, local_dir=data_dir))


@data_app.command("synthetic")
def synthetic(
    out: Path = typer.Argument(..., help="Output JSONL (written atomically)."),
    level: int = typer.Option(1, help="Difficulty: 1 (cold start) to 5."),
    count: int = typer.Option(1000, help="Number of problems."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same file."),
    no_blocks: bool = typer.Option(False, "--no-blocks", help="Plain sequential traces."),
) -> None:
    """Write the offline synthetic task with its programmatic teacher's traces."""
    from parallel_r1.data.synthetic import write_synthetic

    _echo(write_synthetic(str(out), level=level, count=count, seed=seed, blocks=not no_blocks))


@data_app.command("coldstart")
def coldstart(
    name: str = typer.Argument(..., help="Data set name or local file of problems."),
    out: Path = typer.Argument(..., help="Append-only JSONL log; a rerun resumes it."),
    base_url: str = typer.Option(..., help="OpenAI-compatible base URL, e.g. http://host:8000/v1"),
    model: str = typer.Option(..., help="Teacher model name."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Env variable holding the key."),
    split: str | None = typer.Option(None, help="Split of a named set."),
    template: str = typer.Option("parallel", help="Template name or a file with {problem}."),
    limit: int | None = typer.Option(None, help="Only the first N problems."),
    concurrency: int = typer.Option(8, help="Requests in flight at most."),
    max_retries: int = typer.Option(6, help="Retries per problem."),
    backoff: float = typer.Option(1.0, help="First retry delay in seconds (doubles)."),
    timeout: float = typer.Option(300.0, help="Per-request timeout in seconds."),
    temperature: float = typer.Option(0.7, help="Sampling temperature."),
    max_tokens: int = typer.Option(4096, help="Completion token limit."),
    data_dir: DataDir = None,
    progress: bool = typer.Option(True, help="Show a progress bar."),
    backend: str = typer.Option("chat", help="chat: the teacher writes whole traces "
                                "(/v1/chat/completions); openai: a teacher that writes the tags, "
                                "sampled in token ids through the block program."),
    tokenizer: str | None = typer.Option(None, help="openai: the teacher's tokenizer (a model "
                                         "dir, hub id or 'tiny'; default: --model)."),
    layout: str = typer.Option("threads", help="openai: threads (each path its own request) "
                               "or causal."),
    paths: int = typer.Option(2, help="openai: paths per block."),
    max_path_tokens: int = typer.Option(512, help="openai: token cap of one path."),
) -> None:
    """Ask a teacher to solve problems in the parallel format; append answers to OUT."""
    from parallel_r1.data.sources import load_dataset
    from parallel_r1.data.teacher import TeacherConfig, generate

    use_data_dir(data_dir)
    cfg = TeacherConfig(base_url=base_url, model=model, api_key_env=api_key_env,
                        max_concurrency=concurrency, max_retries=max_retries, backoff_s=backoff,
                        timeout_s=timeout, temperature=temperature, max_tokens=max_tokens)
    if backend not in ("chat", "openai"):
        from parallel_r1.errors import ConfigError

        raise ConfigError(f"unknown backend {backend!r}; known: chat, openai", field="backend")
    records = load_dataset(name, split=split, local_dir=data_dir)[:limit]
    if backend == "chat":
        metrics = generate(records, out, config=cfg, template=template, show_progress=progress)
    else:
        metrics = _coldstart_blocks(records, out, cfg, template, tokenizer or model, layout,
                                    paths, max_path_tokens, progress)
    _echo(metrics)
    if metrics["num_failed"]:
        raise typer.Exit(1)


def _coldstart_blocks(records: list, out: Path, cfg, template: str, tokenizer_name: str,
                      layout: str, paths: int, max_path_tokens: int, progress: bool) -> dict:
    """`data coldstart --backend openai`: the block program over the teacher's server."""
    from parallel_r1.data.teacher_engine import generate_with_engine
    from parallel_r1.engine.driver import Engine
    from parallel_r1.engine.openai_backend import OpenAIBackend
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.eval.engines import load_tokenizer

    tok = load_tokenizer(tokenizer_name)
    params = SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                            parallel=ParallelParams(mode=layout, num_paths=paths,
                                                    max_path_tokens=max_path_tokens))
    backend = OpenAIBackend(cfg.base_url, cfg.model, api_key_env=cfg.api_key_env,
                            max_concurrency=cfg.max_concurrency, timeout_s=cfg.timeout_s,
                            max_retries=cfg.max_retries, backoff_s=cfg.backoff_s)
    try:
        return generate_with_engine(records, out, engine=Engine(backend, tok), tokenizer=tok,
                                    params=params, model_name=cfg.model, template=template,
                                    max_in_flight=4 * cfg.max_concurrency,
                                    show_progress=progress)
    finally:
        backend.close()


@data_app.command("postprocess")
def postprocess(
    file: Path = typer.Argument(..., help="JSONL of teacher outputs (e.g. the coldstart log)."),
    out: Path | None = typer.Option(None, help="Write the kept SFT rows here (atomic)."),
    field: str = typer.Option("output", help="Field holding the teacher text."),
    gold_field: str = typer.Option("answer", help="Field holding the gold answer."),
    mode: str = typer.Option("paper", help="Format rule: paper or strict."),
    grader: str = typer.Option("math-verify", help="Answer grader name."),
) -> None:
    """Normalise, validate and grade teacher traces; print the report, keep the good ones."""
    from parallel_r1.data.teacher import postprocess as run_postprocess

    _echo(run_postprocess(file, out, field=field, gold_field=gold_field, mode=mode,
                          grader=grader))
