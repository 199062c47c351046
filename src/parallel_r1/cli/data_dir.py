"""`--data-dir`, the offline data folder, shared by the commands that read named data sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

DATA_DIR_HELP = ("Offline data folder holding the data sets' files, e.g. shared/data "
                 "(default $PARALLEL_R1_DATA, else shared/data beside the repository).")


# The option `--data-dir` (default None: $PARALLEL_R1_DATA or shared/data): `data_dir: DataDir = None`.
DataDir = Annotated[Path | None, typer.Option("--data-dir", help=DATA_DIR_HELP)]


def use_data_dir(path: Path | None) -> None:
    """Make `path` this process's offline data dir ($PARALLEL_R1_DATA, which every loader and
    any child process reads); None leaves the environment as it is.

    Raises:
        ConfigError: `path` is not a directory (names --data-dir).
    """
    if path is None:
        return
    from parallel_r1.data.sources import DATA_ENV
    from parallel_r1.errors import ConfigError

    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"not a directory: {path}", field="--data-dir")
    os.environ[DATA_ENV] = str(path.resolve())
