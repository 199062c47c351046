"""Training commands: `run` a recipe (stages sft, rl, eval in order; resumable)."""

from __future__ import annotations

import json

import typer

from parallel_r1.cli.data_dir import DataDir, use_data_dir
from parallel_r1.cli.options import Threads, use_threads


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""

    @app.command()
    def run(recipe: str = typer.Argument(..., help="Recipe YAML file."),
            overrides: list[str] | None = typer.Argument(
                None, help="key=value overrides, e.g. stages.rl.max_steps=20 output_dir=runs/x"),
            check: bool = typer.Option(
                False, "--check", help="Validate the recipe, say where each data set comes "
                "from, and stop."),
            data_dir: DataDir = None,
            threads: Threads = None) -> None:
        """Run a recipe; rerunning it resumes from the last checkpoint of the unfinished stage.

        Every stage's data, template, benchmarks, graders and settings are resolved before the
        first stage starts; one process at a time may write the output dir.
        """
        from parallel_r1.train.recipe import load

        use_threads(threads)
        use_data_dir(data_dir)
        loaded = load(recipe, list(overrides or []))
        if check:
            from parallel_r1.train.preflight import check_recipe

            lines = check_recipe(loaded)
            num = len(loaded.stages)
            typer.echo(f"ok: {recipe} ({num} stage{'s' * (num != 1)}: "
                       f"{', '.join(s.name for s in loaded.stages)})")
            for line in lines:
                typer.echo(f"  {line}")
            return
        from parallel_r1.train.distributed import rank
        from parallel_r1.train.runner import run as run_recipe

        state = run_recipe(loaded)
        if rank() == 0:  # under torchrun, one summary
            typer.echo(json.dumps({name: {k: v for k, v in rec.items() if k != "metrics"}
                                   for name, rec in state["stages"].items()}, indent=2,
                                  default=str))
