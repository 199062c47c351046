"""The project's exception types: every error a user can cause names what and where."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class ParallelR1Error(Exception):
    """Base class of every error this package raises on purpose."""


class FormatError(ParallelR1Error):
    """Text that does not follow the parallel-thinking format (raised only where asked to)."""

    def __init__(self, message: str, *, offset: int | None = None):
        self.offset = offset
        where = f" (at character {offset})" if offset is not None else ""
        super().__init__(message + where)


def describe_type(value: object) -> str:
    """What a value is, for messages about bad input: "a BatchEncoding", "None", "an int",
    "a 2-D Tensor of torch.int64", "a list of str", "an empty list"."""
    if value is None:
        return "None"
    name = _type_name(value)
    return ("an " if name[0] in "aeiou" else "a ") + name


def _type_name(value: object) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"{len(shape)}-D {type(value).__name__} of {value.dtype}"
    if isinstance(value, (list, tuple)):
        if not value:
            return f"empty {type(value).__name__}"
        return f"{type(value).__name__} of {_type_name(value[0])}"
    return "None" if value is None else type(value).__name__


def _located(message: str, file: str | None, line: int | None, field: str | None) -> str:
    """Prefix a message with "file:line, field 'x': " for whatever of those is known."""
    parts = []
    if file:
        parts.append(f"{file}:{line}" if line else str(file))
    if field:
        parts.append(f"field '{field}'")
    return f"{', '.join(parts)}: {message}" if parts else message


def unknown_name(kind: str, name: str, known: Iterable[str], *, list_all: bool = False) -> str:
    """"unknown key 'lerning_rate'; did you mean 'learning_rate'?" when known names are close
    (difflib), else "unknown key 'x'; known: a, b, c" (sorted); `list_all` lists them always
    (a registry's few names)."""
    known = sorted(known)
    close = get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listed = f"; known: {', '.join(known)}" if list_all or not close else ""
    return f"unknown {kind} '{name}'{hint}{listed}"


class ConfigError(ParallelR1Error):
    """A bad setting: names the field, and the file and line when it came from a file."""

    def __init__(self, message: str, *, field: str | None = None, file: str | None = None,
                 line: int | None = None):
        self.field, self.file, self.line = field, file, line
        super().__init__(_located(message, file, line, field))


class DataError(ParallelR1Error):
    """A malformed data file: names the file, the line (1-based) and the field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.file, self.line, self.field = file, line, field
        super().__init__(_located(message, file, line, field))


class UnknownNameError(ConfigError, KeyError):
    """A name looked up in a registry that does not hold it; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class EngineError(ParallelR1Error):
    """Bad generation input (prompt too long, tags missing, conflicting sampling settings)."""
