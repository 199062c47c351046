"""Options that several commands share, declared once (see `parallel_r1.cpu_threads`)."""

from __future__ import annotations

from typing import Annotated

import typer

Threads = Annotated[int | None, typer.Option(
    "--threads", help="CPU threads torch computes with (default: $OMP_NUM_THREADS if set, "
    "else 1; see README, Threads).", show_default=False)]


def use_threads(threads: int | None) -> int:
    """Apply a command's `--threads` (None: the default rule); returns the count in force."""
    from parallel_r1.cpu_threads import use_threads as apply

    return apply(threads)
