"""Commands of this group (not written yet)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
