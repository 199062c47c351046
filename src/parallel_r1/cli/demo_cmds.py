"""`parallel-r1 demo`: the README's main command (see `parallel_r1.train.demo`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from parallel_r1.cli.options import Threads, use_threads

QUICK_ENV = "PARALLEL_R1_DEMO_QUICK"


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""

    @app.command()
    def demo(out: Path = typer.Option(Path("runs/demo"), help="Output directory."),
             quick: bool = typer.Option(
                 False, "--quick", help=f"Minimal sizes, seconds (also ${QUICK_ENV}=1)."),
             overrides: list[str] | None = typer.Argument(
                 None, help="key=value overrides of the demo recipe, e.g. stages.rl.max_steps=10"),
             threads: Threads = None) -> None:
        """Offline CPU demo: tiny model -> synthetic cold start -> SFT -> RL (alternating reward)
        -> evals before and after each stage, a table and plots. Rerun to resume."""
        use_threads(threads)
        from parallel_r1.train.demo import run_demo

        result = run_demo(out, quick=quick or os.environ.get(QUICK_ENV) == "1",
                          overrides=list(overrides or []))
        typer.echo("\n" + result["table"])
        typer.echo(f"\ntable:   {result['table_path']}\nplots:   "
                   + "\n         ".join(str(p) for p in result["plots"])
                   + f"\nreport:  {result['report']}\nrun:     {out / 'run'} "
                   f"(state.json, per-stage outputs)\ndone in {result['seconds'] / 60:.1f} min")
