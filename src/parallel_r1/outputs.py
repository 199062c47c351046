"""Output folders: a run, eval or grid writes only inside a folder it owns, and removes only the
temporaries it made there.

A folder is ours when it holds `OWNER_FILE` (written when a command creates a folder or finds it
empty) or, for outputs written before that file existed, one of our own state files (the writer
lock, a run's or a grid's state, an eval's config beside its samples). Any other non-empty
folder is refused whole: nothing in it is read, written or removed. Temporaries carry `TAG` in
their names, so the clean-up after a kill never matches a user's file. Pure standard library.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from parallel_r1.errors import ParallelR1Error

OWNER_FILE = ".parallel-r1-output"
TAG = "parallel-r1-tmp"
# `.NAME.parallel-r1-tmp-ID` (an atomic file or model save), `.NAME.parallel-r1-old-ID` (the
# model a save replaces), `.STEM.parallel-r1-tmp-ID.png` (a figure): nothing a user names so.
_TEMPORARY = re.compile(r"\..+\.parallel-r1-(tmp|old)-[0-9A-Za-z_-]+(\.png)?")


_WRITTEN: list[Path] = []  # outputs this process claimed or locked, in order (for Ctrl-C)


def note_output(path: str | os.PathLike) -> None:
    """Record that this process writes `path` (an output folder or an append-only file)."""
    path = Path(path)
    if path not in _WRITTEN:
        _WRITTEN.append(path)


def outputs_written(*, clear: bool = False) -> list[Path]:
    """The outputs this process claimed or locked so far, first first (what Ctrl-C kept);
    `clear` starts a new record (a command run in this process, e.g. by a test)."""
    written = list(_WRITTEN)
    if clear:
        _WRITTEN.clear()
    return written


class ForeignFolderError(ParallelR1Error):
    """An output folder that holds files parallel-r1 did not write; names it and the way out."""


def output_path(path: str | os.PathLike) -> Path:
    """An output path as every part of the program must see it: `~` expanded, made absolute and
    symlinks resolved (so one folder has one name, and one lock)."""
    return Path(path).expanduser().resolve()


def temp_name(target: str | Path, kind: str = "tmp", suffix: str = "") -> Path:
    """A hidden temporary beside `target` that `remove_temporaries` recognises as ours.

    Args:
        kind: "tmp" (being written) or "old" (being replaced).
        suffix: kept at the end (".png": a writer that picks the format from the name).
    """
    target = Path(target)
    return target.with_name(f".{target.name}.{TAG.replace('tmp', kind)}-{os.getpid()}-"
                            f"{uuid.uuid4().hex[:8]}{suffix}")


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one of our temporaries (see `temp_name`)."""
    return _TEMPORARY.fullmatch(name) is not None


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_legacy_output(folder: Path, names: set[str]) -> bool:
    """A folder written by a version of parallel-r1 that did not yet leave `OWNER_FILE`: its
    writer lock (runs, evals) or a grid's lock beside the grid's state. Files with common names
    (state.json, config.json) alone prove nothing: a user's folder may hold them."""
    if ".parallel-r1.lock" in names:
        return True
    grid = _json(folder / "grid-state.json") if "grid.lock" in names else None
    if isinstance(grid, dict) and isinstance(grid.get("nodes"), dict):
        return True
    run = folder / "run"  # a demo: its run, table and plots
    return "run" in names and run.is_dir() and ".parallel-r1.lock" in os.listdir(run)


def is_ours(directory: str | Path) -> bool:
    """Whether `directory` is an output folder of parallel-r1 (see the module docstring)."""
    folder = Path(directory)
    if not folder.is_dir():
        return False
    names = set(os.listdir(folder))
    return OWNER_FILE in names or _is_legacy_output(folder, names)


def claim(directory: str | Path, command: str = "") -> Path:
    """Make `directory` an output folder of ours, or refuse it before anything is written.

    A missing or empty folder is created and marked (`OWNER_FILE`, recording `command`); a
    folder of ours is kept as it is (an older one gets the mark).

    Raises:
        ForeignFolderError: `directory` is a file, or a non-empty folder parallel-r1 did not
            write (names it and how to proceed); nothing was touched.
    """
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise ForeignFolderError(f"{folder} is a file; give a folder for the outputs")
    if folder.is_dir() and (folder / OWNER_FILE).is_file():
        note_output(folder)
        return folder
    if folder.is_dir() and os.listdir(folder) and not is_ours(folder):
        raise ForeignFolderError(
            f"{folder} is not empty and was not written by parallel-r1 (it has no {OWNER_FILE}); "
            "outputs go only into a new or empty folder: give another one (if it really is an "
            f"output of parallel-r1, create an empty {OWNER_FILE} in it)")
    note_output(folder)
    return mark(folder, command)


def mark(directory: str | Path, command: str = "") -> Path:
    """Create `directory` (parents too) and mark it as ours; only for a folder this program made
    or checked with `claim` (e.g. a grid's node folders inside its own folder)."""
    from parallel_r1.files import write_text_atomic, writing

    folder = Path(directory)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    if not (folder / OWNER_FILE).is_file():
        write_text_atomic(folder / OWNER_FILE, json.dumps({"written_by": "parallel-r1",
                                                           "command": command}) + "\n")
    return folder


def remove_temporaries(directory: str | Path, depth: int = 2) -> list[Path]:
    """Delete the temporaries a killed writer of ours left (names from `temp_name`, at most
    `depth` levels down) in a folder of ours; anything else, whatever its name, stays.

    Call it only while holding the output's `one_writer` lock (then no write is in flight).
    Returns the removed paths ([] for a folder that is not ours).
    """
    directory, removed = Path(directory), []
    if not is_ours(directory):
        return removed
    for level in range(depth):
        pattern = "/".join(["*"] * level + [".*"])
        for path in sorted(directory.glob(pattern)):
            if not is_temporary(path.name) or path.is_symlink():
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def drop_if_unused(directory: str | Path) -> bool:
    """Remove `directory` when it holds only our mark and writer lock (a command that failed
    before writing anything, e.g. data it could not read), so no empty output is left behind;
    call it after the lock is released. Returns whether it was removed."""
    from parallel_r1.files import LOCK_NAME

    folder = Path(directory)
    names = set(os.listdir(folder)) if folder.is_dir() else {""}
    if not names <= {OWNER_FILE, LOCK_NAME}:
        return False
    for name in names:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # someone wrote into it meanwhile
        return False
    return True
