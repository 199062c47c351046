"""Files: outputs written atomically (a temp file beside the target, fsync, then os.replace),
so a crash never leaves a half-written output; JSON Lines inputs read with errors that name the
file, line and field; append-only logs repaired after a crash, trimmed on resume and read with one
row per key; one writer per output (an advisory lock); a full disk named as such. Pure standard
library.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from parallel_r1.errors import DataError, ParallelR1Error
from parallel_r1.outputs import TAG

T = TypeVar("T")
LOCK_NAME = ".parallel-r1.lock"
_HELD: set[str] = set()  # locks this process holds (re-entering one is a no-op)
_FULL = (errno.ENOSPC, errno.EDQUOT)
_DROPPED_ERRNO = ("write", "unexpected pos", "iostream error")  # writers that lose the errno


class DiskFullError(ParallelR1Error):
    """A write failed because the disk (or the user's quota) is full; names the path."""


class WriterLockedError(ParallelR1Error):
    """Another process holds the one-writer lock of an output; names that process."""


def is_disk_full(exc: BaseException, path: str | Path | None = None) -> bool:
    """Whether `exc` (or an exception it came from) means the disk is full.

    ENOSPC/EDQUOT anywhere in the chain, or the message of a writer that drops the errno (torch's
    "file write failed", "unexpected pos" and "iostream error" from its zip writer after a short
    write, safetensors) while the filesystem of `path` has under 1 MiB free.
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    if path is not None and any(word in str(exc).lower() for word in _DROPPED_ERRNO):
        probe = Path(path)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            return shutil.disk_usage(probe).free < 1 << 20
        except OSError:
            return False
    return False


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a full-disk failure inside the block into `DiskFullError("disk full while writing
    PATH")` (the failing file when the OS names it); other errors pass through unchanged."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc, path):
            raise
        where = getattr(exc, "filename", None) or path
        raise DiskFullError(f"disk full while writing {where}; free some space and rerun "
                            "(a run, eval or coldstart resumes where it stopped)") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[TextIO], None]) -> Path:
    """Call `write(handle)` on a temp file beside `path`, then move it into place."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{TAG}-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from others
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


def read_jsonl(path: str | Path, fields: Mapping[str, tuple[type, ...]] | None = None, *,
               max_line_mb: float | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line, record) for each non-blank line of a JSON Lines file.

    Lines end at `\n` only (a JSON string may hold U+2028, which `str.splitlines` would cut).
    One line is in memory at a time, and with `max_line_mb` no more than that many MB of it.

    Args:
        fields: required fields and the types each may have (bool never counts as a number).
        max_line_mb: refuse a line longer than this (None: any length).

    Raises:
        DataError: unreadable or empty file (no record), a line over `max_line_mb`, bad UTF-8 or
            JSON, a record that is not an object, or a required field missing or of another
            type; names the file, the line and the field.
    """
    file, count = str(path), 0
    limit = -1 if max_line_mb is None else int(max_line_mb * (1 << 20))
    try:
        with open(path, "rb") as handle:
            line_no = 0
            while raw := handle.readline(limit + 1 if limit >= 0 else -1):
                line_no += 1
                if 0 <= limit < len(raw) and not raw.endswith(b"\n"):  # read no further
                    raise DataError(f"line longer than {max_line_mb:g} MB (a real trace is "
                                    "kilobytes); raise --max-trace-mb to read it", file=file,
                                    line=line_no)
                line = decode_line(raw, file, line_no)
                if line.strip():
                    count += 1
                    row = _record(line, fields or {}, file, line_no)
                    del raw, line  # only the record stays while the caller holds it
                    yield line_no, row
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", file=file) from None
    if not count:
        raise DataError("empty file: no JSON records", file=file)


def decode_line(raw: bytes, file: str, line_no: int) -> str:
    """One line of a file as UTF-8 text.

    Raises:
        DataError: the line is not UTF-8 (names the file, the line and the column).
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
        raise DataError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column}; "
                        "convert the file to UTF-8", file=file, line=line_no) from None


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
        line = decode_line(raw, str(path), number)
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=number) from None
    return rows, len(data) - keep


def append_jsonl(target: int | str | Path, row: Mapping[str, Any], *,
                 name: str | Path | None = None) -> None:
    """Append one JSON line to a log with a single write, then fsync (see `append_rows`)."""
    append_rows(target, [row], name=name)


def append_rows(target: int | str | Path, rows: Iterable[Mapping[str, Any]], *,
                name: str | Path | None = None) -> None:
    """Append JSON lines to a log with a single write, then fsync.

    `target` is a file descriptor opened with O_APPEND (kept open by a long writer; `name` is its
    path for messages) or a path (opened and closed around the write). One write per batch keeps
    concurrent writers' lines whole; a crash can leave only a torn last line, which `read_log`
    repairs.

    Raises:
        DiskFullError: the disk is full (names the log).
    """
    where = name or (target if not isinstance(target, int) else "a log")
    with writing(where):
        if not isinstance(target, int):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                return append_rows(fd, rows, name=where)
            finally:
                os.close(fd)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if not data:
            return None
        written = os.write(target, data)
        if written != len(data):  # a short write on a regular file means the disk is full
            raise OSError(errno.ENOSPC, f"short write: {written} of {len(data)} bytes")
        os.fsync(target)
    return None


def dedupe(rows: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """One row per key: the last one written wins (a later write supersedes an earlier one, as
    after a resume), placed where its key first appeared."""
    kept: dict[Hashable, T] = {}
    for row in rows:
        kept[key(row)] = row
    return list(kept.values())


def step_key(row: Mapping[str, Any]) -> Hashable:
    """The key of a training log row (metrics.jsonl, rollouts.jsonl): its step, its index within
    the step (rollout dumps) and whether it is the end-of-training summary."""
    return row.get("step"), row.get("index"), "train_runtime" in row


def trim_log(path: str | Path, keep: Callable[[dict], bool]) -> int:
    """Rewrite a JSONL log atomically with only the rows `keep` accepts (lines kept byte for
    byte); a torn last line goes too. Returns the number of rows removed (0 when no file)."""
    path = Path(path)
    if not path.exists():
        return 0
    rows, _ = read_log(path)
    lines = path.read_bytes().split(b"\n")
    kept = [lines[number - 1].decode("utf-8") for number, row in rows if keep(row)]
    if len(kept) < len(rows):
        write_text_atomic(path, "".join(line + "\n" for line in kept))
    return len(rows) - len(kept)


# --------------------------------------------------------------------------- one writer

def holder(lock: Path) -> str:
    """Who holds the writer lock `lock`, as its file records it (for refusal messages)."""
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        return (f"pid {info['pid']} on {info['host']} ({info['command']}), since "
                f"{info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its details are not written yet)"


@contextmanager
def one_writer(directory: str | Path, command: str, *, name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the advisory write lock of an output for the duration of the block.

    The lock is `fcntl.flock` on `directory/name`, so it dies with its process (kill -9
    included) and nothing is left to clean up; the file records the holder (pid, host, command,
    start time) for the message a second writer gets. Under `torchrun`, only rank 0 locks; a
    process that holds the lock already enters again freely. The output lock (the default
    `name`) first claims `directory` as an output folder (`outputs.claim`).

    Raises:
        WriterLockedError: another process holds the lock (names it); nothing was touched.
        ForeignFolderError: `directory` holds files parallel-r1 did not write; nothing was
            touched.
    """
    import fcntl
    import socket
    import time

    directory = Path(directory)
    lock = directory / name
    key = os.path.abspath(lock)
    if int(os.environ.get("RANK", "0")) != 0 or key in _HELD:  # not rank 0, or held already
        yield lock
        return
    if name == LOCK_NAME:
        from parallel_r1.outputs import claim

        claim(directory, command)
    with writing(lock):
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            guarded = directory if name == LOCK_NAME else \
                directory / name.removeprefix(".").removesuffix(".lock")
            raise WriterLockedError(
                f"{guarded} is in use by {holder(lock)}; one writer at a time: wait for it "
                f"to finish (or stop it), or write elsewhere") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        _HELD.add(key)
        if name != LOCK_NAME:  # the output folder was noted by `claim`; this one is a file
            from parallel_r1.outputs import note_output

            note_output(directory / name.removeprefix(".").removesuffix(".lock"))
        try:
            yield lock
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # closing releases the lock; the file stays (deleting it would race)


def command_line() -> str:
    """This process's command line as the user can type it again (lock messages, the Ctrl-C
    resume hint): the program as `program()` renders it, then the arguments, shell-quoted."""
    import shlex
    import sys

    argv = list(sys.argv)
    head = program(argv[0]) if argv else []
    return " ".join([*head, *(shlex.quote(a) for a in argv[1:])])


def program(argv0: str) -> list[str]:
    """How to run this program again, as shell words: "parallel-r1" when that name on $PATH is
    this very script (or is how it was typed); else the script as invoked
    (".venv/bin/parallel-r1", a venv not activated); `python -m parallel_r1` runs as
    "<this python> -m parallel_r1" unless this python's own `parallel-r1` is on $PATH."""
    import shlex
    import shutil
    import sys

    on_path = shutil.which("parallel-r1")
    if argv0.endswith("__main__.py"):
        mine = Path(sys.executable).with_name("parallel-r1")
        if on_path and mine.exists() and os.path.samefile(on_path, mine):
            return ["parallel-r1"]
        return [shlex.quote(sys.executable), "-m", "parallel_r1"]
    if Path(argv0).name != "parallel-r1" or argv0 == "parallel-r1":
        return [shlex.quote(argv0)]
    if on_path and os.path.exists(argv0) and os.path.samefile(on_path, argv0):
        return ["parallel-r1"]
    return [shlex.quote(argv0)]
