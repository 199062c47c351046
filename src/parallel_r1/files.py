"""Files: outputs written atomically (a temp file beside the target, fsync, then os.replace),
so a crash never leaves a half-written output, and JSON Lines inputs read with errors that name
the file, line and field. Pure standard library.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from parallel_r1.errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[TextIO], None]) -> Path:
    """Call `write(handle)` on a temp file beside `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return write_atomic(path, lambda handle: handle.write(text))


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> int:
    """Write rows as JSON Lines (UTF-8, one object per line) atomically; returns the count."""
    count = 0

    def write(handle: TextIO) -> None:
        nonlocal count
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1

    write_atomic(path, write)
    return count


def read_jsonl(path: str | Path, fields: Mapping[str, tuple[type, ...]] | None = None
               ) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line, record) for each non-blank line of a JSON Lines file.

    Lines end at `\n` only (a JSON string may hold U+2028, which `str.splitlines` would cut).

    Args:
        fields: required fields and the types each may have (bool never counts as a number).

    Raises:
        DataError: unreadable file, bad JSON, a record that is not an object, or a required field
            missing or of another type; names the file, the line and the field.
    """
    file = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_no, _record(line, fields or {}, file, line_no)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", file=file) from None


def _record(line: str, fields: Mapping[str, tuple[type, ...]], file: str, line_no: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"bad JSON: {exc.msg} (column {exc.colno})", file=file,
                        line=line_no) from None
    if not isinstance(row, dict):
        raise DataError("record is not a JSON object", file=file, line=line_no)
    for name, types in fields.items():
        value = row.get(name)
        if name not in row:
            raise DataError("field is missing", file=file, line=line_no, field=name)
        if not isinstance(value, types) or isinstance(value, bool):
            wanted = "a string" if types == (str,) else "a string or a number"
            raise DataError(f"field is a {type(value).__name__}, not {wanted}", file=file,
                            line=line_no, field=name)
    return row


def read_log(path: str | Path) -> tuple[list[tuple[int, dict]], int]:
    """Records of an append-only JSONL log, repairing it after a crash.

    A last line without its `\n` was cut by a crash mid-write: it is removed from the file (so
    the next append starts clean) and not returned.

    Returns:
        ([(1-based line, record)], bytes removed); ([], 0) when the file does not exist.
    Raises:
        DataError: a broken line that is not the last one (names the file and the line).
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # a complete log ends with "\n"
    if keep < len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
    rows = []
    for number, raw in enumerate(data[:keep].split(b"\n")[:-1], start=1):
        line = raw.decode("utf-8")
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=number) from None
    return rows, len(data) - keep


def append_jsonl(target: int | str | Path, row: Mapping[str, Any]) -> None:
    """Append one JSON line to a log with a single write, then fsync.

    `target` is a file descriptor opened with O_APPEND (kept open by a long writer) or a path
    (opened and closed around the write). One write per line keeps concurrent writers' lines
    whole; a crash can leave only a torn last line, which `read_log` repairs.
    """
    if not isinstance(target, int):
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            return append_jsonl(fd, row)
        finally:
            os.close(fd)
    data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    written = os.write(target, data)
    if written != len(data):  # a short write on a regular file means the disk is full
        raise OSError(f"short write: {written} of {len(data)} bytes")
    os.fsync(target)
