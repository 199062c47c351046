"""Recipe values checked against their field's annotation, with messages that name the field,
file and line. Pure Python; no torch.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.errors import ConfigError

_WANTED = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
           "dict": "a mapping", "list": "a list"}


def check_type(value: Any, annotation: Any, field: str, file: str | None = None,
               line: int | None = None) -> Any:
    """`value` checked against a field's annotation ("int", "float | None", "tuple[str, ...]").

    Numbers written as YAML strings (YAML 1.1 reads `1e-5` as text) become numbers, and a whole
    float becomes an int; nothing else is converted.

    Raises:
        ConfigError: another type (`max_steps: 2.5`, `eval: fast`, a list for a number), naming
            the field, and the file and line when known.
    """
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kind = kind.replace("typing.", "").replace(" ", "")
    if kind.endswith("|None") or kind.startswith("None|"):
        if value is None:
            return None
        kind = kind.removesuffix("|None").removeprefix("None|")
    if kind.startswith(("tuple[", "list[")) and isinstance(value, (list, tuple)):
        inner = kind[kind.index("[") + 1:].split(",")[0].rstrip("]")
        return type(value)(check_type(v, inner, f"{field}.{i}", file, line)
                           for i, v in enumerate(value))
    if kind.startswith("tuple[") and isinstance(value, str):  # "a,b" for a tuple of names
        return tuple(part.strip() for part in value.split(",") if part.strip())
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("float", "int") and isinstance(value, str):
        try:
            return float(value) if kind == "float" else int(value)
        except ValueError:
            pass
    elif kind == "float" and number:
        return float(value)
    elif kind == "int" and number and float(value).is_integer():
        return int(value)
    elif kind not in _WANTED or type(value).__name__ == kind:
        return value
    got = repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"
    raise ConfigError(f"expected {_WANTED.get(kind.split('[')[0], kind)}, got {got}",
                      field=field, file=file, line=line)
