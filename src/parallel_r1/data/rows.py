"""Rows of a data file: JSON Lines, a JSON list or Parquet, the JSON kinds optionally gzipped
(`.jsonl.gz`, as the packaged data sets ship). Every unreadable row is a `DataError` naming the
file and line. Pure Python (pyarrow only for Parquet).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from parallel_r1.errors import DataError
from parallel_r1.files import decode_line

SUFFIXES = (".jsonl", ".json", ".parquet", ".jsonl.gz", ".json.gz")


def data_suffix(path: Path) -> str:
    """The data kind of a file name: ".jsonl", ".json" or ".parquet" (".gz" looked through),
    or "" for any other file."""
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    suffix = Path(name).suffix
    return suffix if suffix in (".jsonl", ".json", ".parquet") else ""


def iter_json_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line or row number, object) for each row of a JSONL, JSON (list) or Parquet file.

    Raises:
        DataError: an unreadable file, invalid JSON or a row that is not an object, naming
            file and line.
    """
    suffix = data_suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # optional extra: only needed for Parquet

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
        return
    if suffix == ".json":
        raw = read_bytes(path)
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:  # name the line: decode it alone
            first = raw.rfind(b"\n", 0, exc.start) + 1
            decode_line(raw[first:].split(b"\n", 1)[0], str(path),
                        raw.count(b"\n", 0, exc.start) + 1)
            raise
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
        if not isinstance(data, list):
            raise DataError("expected a JSON list of objects", file=str(path))
        rows: Iterable[tuple[int, Any]] = enumerate(data, start=1)
    else:
        rows = _jsonl_lines(path)
    for number, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"expected an object, got {type(row).__name__}", file=str(path),
                            line=number)
        yield number, row


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ".gz".

    Raises:
        DataError: the file cannot be read or is not valid gzip (names the file).
    """
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    except (EOFError, zlib.error) as exc:  # a truncated or corrupt gzip stream
        raise DataError(f"cannot read: not valid gzip ({exc})", file=str(path)) from None


def _jsonl_lines(path: Path) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(read_bytes(path).split(b"\n"), start=1):
        line = decode_line(raw, str(path), number)
        if not line.strip():
            continue
        try:
            yield number, json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=str(path),
                            line=number) from None


def files_in(path: Path, split: str | None) -> list[Path]:
    """The data files of `path` (itself when a file; else every data file below it, only those
    whose name starts with `split` when some do).

    Raises:
        DataError: a directory with no data files (names it).
    """
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if data_suffix(p) and p.is_file())
    if split and any(p.name.startswith(split) for p in files):
        files = [p for p in files if p.name.startswith(split)]
    if not files:
        raise DataError(f"no {'/'.join(SUFFIXES)} files", file=str(path))
    return files
