"""`parallel-r1 grid`: arms x seeds through the recipe runner, then one comparison
(see `parallel_r1.train.grid`, `train.grid_runner` and `eval.grid_report`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from parallel_r1.cli.data_dir import DataDir, use_data_dir
from parallel_r1.cli.options import Threads


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""

    @app.command()
    def grid(file: Path | None = typer.Argument(None, help="Grid YAML file (or --mini)."),
             overrides: list[str] | None = typer.Argument(
                 None, help="Grid settings as KEY=VALUE, e.g. seeds=[0,1] jobs=2"),
             mini: bool = typer.Option(False, "--mini", help="The packaged miniature grid."),
             quick: bool = typer.Option(
                 False, "--quick", help="Smallest sizes (2 seeds, a few steps): minutes."),
             out: Path | None = typer.Option(None, help="Output folder (the grid's output_dir)."),
             check: bool = typer.Option(False, "--check", help="Load, plan and stop."),
             report_only: bool = typer.Option(
                 False, "--report-only", help="Only rewrite the report of finished runs."),
             report_dir: Path | None = typer.Option(
                 None, help="Report folder (default OUTPUT_DIR/report), e.g. for another "
                 "baseline: --report-only baseline=ARM --report-dir DIR"),
             data_dir: DataDir = None,
             threads: Threads = None) -> None:
        """Run every (arm, seed) of a grid, resumably, then write the comparison table, plots
        and report.md into OUTPUT_DIR/report. Rerun to resume; finished runs are never redone."""
        from parallel_r1.errors import ConfigError
        from parallel_r1.train.grid import QUICK, load_grid, mini_grid_path, plan

        use_data_dir(data_dir)
        if file is not None and "=" in str(file) and not file.exists():  # `--mini KEY=VALUE`
            overrides, file = [str(file), *(overrides or [])], None
        if (file is None) == (not mini):
            raise ConfigError("give a grid file or --mini (not both)", field="file")
        extra = (QUICK if quick else []) + list(overrides or [])
        if out is not None:
            extra.append(f"output_dir={out}")
        if threads is not None:  # per worker (the grid's `threads`)
            extra.append(f"threads={threads}")
        loaded = load_grid(mini_grid_path() if mini else file, extra)
        planned = plan(loaded)
        runs = len(planned.chains)
        steps = sum(len(c) for c in planned.chains.values())
        typer.echo(f"grid {loaded.name}: {len(loaded.arms)} arms x {len(loaded.seeds)} seeds = "
                   f"{runs} runs, {steps} stages, {len(planned.nodes)} distinct nodes "
                   f"(shared prefixes run once) -> {loaded.output_dir}")
        if check:
            return
        from parallel_r1.train.grid_runner import report_grid, run_grid

        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        state = None if report_only else run_grid(loaded, planned)
        if report_dir is not None:
            from parallel_r1.outputs import output_path

            report_dir = output_path(report_dir)
        result = report_grid(loaded, planned, state, report_dir)
        typer.echo("\n" + result["table"])
        typer.echo(f"\nreport: {result['report']}\nplots:  "
                   + "\n        ".join(str(p) for p in result["plots"]))
