"""Evaluation commands: `eval MODEL`, `analyze RUN_DIR`, `compare RUN_OR_EVAL ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parallel_r1.cli.data_dir import DataDir, use_data_dir
from parallel_r1.cli.options import Threads, use_threads
from parallel_r1.eval.benchmarks import names_text

RECORDED = "the model's recorded"  # help: a default that MODEL's parallel_r1.json may set
LAST = "its last recorded eval's"  # help: replayed when --benchmarks is not given


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("eval")(eval_model)
    app.command("analyze")(analyze)
    app.command("compare")(compare)


def eval_model(
    model: Annotated[str, typer.Argument(
        help="A model dir or hub id, or 'tiny' (random, offline).")],
    benchmarks: Annotated[str | None, typer.Option(
        help=f"Comma-separated, any of: {names_text()} (default: {RECORDED} last eval and its "
        "settings, else gsm8k).", show_default=False)
    ] = None,
    samples: Annotated[int | None, typer.Option(
        help=f"Samples per problem k (default: {LAST}, else each benchmark's own, 16 for "
        "AIME/AMC).")] = None,
    limit: Annotated[int | None, typer.Option(
        help=f"Only the first N problems of each (default: {LAST}, else all).")] = None,
    mode: Annotated[str | None, typer.Option(
        help=f"Layout: causal | structured | threads (default: {RECORDED} layout, else "
        "structured).", show_default=False)] = None,
    paths: Annotated[int | None, typer.Option(
        "--paths", help=f"Paths per block, 2..8; 0 lets the model decide (default: {RECORDED} "
        "count, else 2).", show_default=False)] = None,
    template: Annotated[str | None, typer.Option(
        help=f"Prompt template name or file (default: {RECORDED} template, else parallel).",
        show_default=False)] = None,
    max_tokens: Annotated[int | None, typer.Option(
        help=f"Response token cap, all paths (default: {LAST}, else 3000).",
        show_default=False)] = None,
    temperature: Annotated[float | None, typer.Option(
        help=f"Sampling temperature (default: {LAST}, else 1.0).", show_default=False)] = None,
    top_p: Annotated[float | None, typer.Option(
        help=f"Nucleus mass (default: {LAST}, else 1.0).", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        help=f"Base seed; every sample derives its own (default: {LAST}, else 0).",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output dir (default eval-out/<recipe-stage or model dir>-<hash of the model and "
        "sampling settings>); a rerun resumes it.")] = None,
    grader: Annotated[str | None, typer.Option(
        help=f"Comma-separated graders, the first is the headline one (default: {LAST}, else "
        "math-verify,paper).", show_default=False)] = None,
    answer_reader: Annotated[str | None, typer.Option(
        help="Where answers are read: final-answer (the Final-Answer contract, as the RL "
        "reward reads) or common (that, else the last '#### X', else the last 'the answer is X' "
        f"/ 'Answer: X'; for models not trained on the contract) (default: {LAST}, else "
        "final-answer).", show_default=False)
    ] = None,
    sc_baseline: Annotated[bool, typer.Option(
        "--sc-baseline", help="Add self-consistency (causal, majority vote) at the same budget.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Problems sampled side by side.")] = 8,
    drop_suspect: Annotated[bool, typer.Option(
        "--drop-suspect", help="Drop problems flagged suspect_truncated.")] = False,
    data_dir: DataDir = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    backend: Annotated[str, typer.Option(
        help="torch (built in) | openai (a server: --base-url) | vllm (in process).")] = "torch",
    base_url: Annotated[str | None, typer.Option(
        help="openai: the server's base URL, e.g. http://host:8000/v1.")] = None,
    served_name: Annotated[str | None, typer.Option(
        help="openai: the served model name (default: the server's only model).")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="openai: env variable holding the API key.")] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 8,
    kv_cache_gb: Annotated[float | None, typer.Option(
        help="torch, vllm: KV cache budget in GiB.")] = None,
    threads: Threads = None,
) -> None:
    """Sample, grade and tabulate MODEL on benchmarks; resumable (per-sample JSONL).

    Settings not given come from MODEL's own parallel_r1.json where it records them (its
    template, layout, paths per block and, without --benchmarks, its last eval's settings);
    a given template, layout or --paths that contradicts the record is used, with a warning.
    With --backend openai, MODEL names the tokenizer (a model dir, hub id or 'tiny') and the
    server samples; the structured layout needs the built-in engine.
    """
    use_threads(threads)
    from parallel_r1.eval.defaults import default_out, settle_eval
    from parallel_r1.eval.engines import EngineChoice, open_engine
    from parallel_r1.eval.evaluate import evaluate

    use_data_dir(data_dir)
    # Every setting is checked before a warning is printed or a folder is made.
    choice = EngineChoice(backend=backend, base_url=base_url, served_name=served_name,
                          api_key_env=api_key_env, concurrency=concurrency, device=device,
                          kv_cache_gb=kv_cache_gb)
    tokenizer_only = backend == "openai" and (Path(model).expanduser()
                                              / "tokenizer_config.json").is_file()
    if model != "tiny" and not tokenizer_only:
        from parallel_r1.models.load import resolve_source

        resolve_source(model)  # a model folder, or a hub id's form
    cfg, warnings = settle_eval(model, dict(
        benchmarks=benchmarks, samples=samples, limit=limit, mode=mode, template=template,
        num_paths=paths,
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
        graders=tuple(grader.split(",")) if grader is not None else None,
        answer_reader=answer_reader,
        sc_baseline=sc_baseline, batch_size=batch_size, drop_suspect=drop_suspect))
    for line in warnings:
        typer.echo(line, err=True)
    from parallel_r1.files import command_line, one_writer
    from parallel_r1.outputs import output_path

    engine = {"backend": backend, "base_url": base_url, "served_name": served_name}
    out = output_path(out or default_out(model, cfg, engine))
    fresh = not out.exists()
    try:  # before the model loads: a folder that is not ours, or a second writer, stops here
        with one_writer(out, command_line()):
            engine, net, tokenizer, name = open_engine(model, choice)
            summary = evaluate(net, tokenizer, cfg, out, model_name=name, engine=engine)
    except BaseException:
        if fresh:  # failed before writing anything (e.g. a data set it could not read)
            from parallel_r1.outputs import drop_if_unused

            drop_if_unused(out)
        raise
    typer.echo(summary["table"])
    typer.echo(f"\nwrote {out}/samples.jsonl, summary.json, table.md")


def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A training run dir (metrics and rollouts).")],
    out: Annotated[Path | None, typer.Option(help="Report dir (default RUN_DIR/analysis).")] = None,
) -> None:
    """Plots and a markdown report of a training run: curves, block position, block roles."""
    from parallel_r1.eval.analysis import analyze_run

    result = analyze_run(run_dir, out)
    typer.echo(result["report_text"])
    typer.echo(f"\nwrote {result['report']} and {len(result['plots'])} plots in {result['out']}")


def compare(
    paths: Annotated[list[Path], typer.Argument(help="Eval dirs / summary.json files / run dirs.")],
    grader: Annotated[str | None, typer.Option(help="Grader to tabulate (default: each's first).")
                      ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table to this file.")] = None,
) -> None:
    """One table across evals and runs, in the paper's main-table layout."""
    from parallel_r1.eval.compare import compare_table

    table = compare_table(paths, grader=grader)
    typer.echo(table)
    if out is not None:
        from parallel_r1.eval.report import write_text

        write_text(out, table + "\n")
        typer.echo(f"\nwrote {out}")
