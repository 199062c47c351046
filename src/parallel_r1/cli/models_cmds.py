"""`parallel-r1 models ...`: prepare a known model into a tagged transformers directory; describe one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from parallel_r1.cli.options import Threads, use_threads

models_app = typer.Typer(help="Prepare and inspect model directories.", no_args_is_help=True,
                         rich_markup_mode=None)


@models_app.command("prepare")
def prepare(
    name: Annotated[str, typer.Argument(help="Which model, e.g. smollm2-135m-instruct.")],
    directory: Annotated[Path, typer.Argument(help="Where to write the transformers directory.")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if DIR is prepared.")] = False,
    threads: Threads = None,
) -> None:
    """Write a known model with the six tags as a transformers directory (idempotent)."""
    from parallel_r1.models import PREPARERS

    use_threads(threads)
    path, info = PREPARERS.get(name)(directory, force=force)
    if info["skipped"]:
        typer.echo(f"{path} already holds {name} from the same source; nothing to do "
                   "(--force rebuilds it)")
    else:
        typer.echo(f"prepared {name} in {path} in {info['seconds']:.1f} s "
                   f"({info['tags_added']} tags added)")
    typer.echo(f"tag ids: {json.dumps(info['tag_ids'])}")


@models_app.command("info")
def info(
    directory: Annotated[Path, typer.Argument(help="A transformers model directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print parameters, vocabulary, tag ids, chat template presence and provenance."""
    from parallel_r1.models import describe

    summary = describe(directory)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            value = json.dumps(value)
        elif key == "parameters":
            value = f"{value:,} ({value / 1e6:.1f} M)"
        typer.echo(f"{key:18} {value}")


def register(app: typer.Typer) -> None:
    """Add the `models` group to `app`."""
    app.add_typer(models_app, name="models")
