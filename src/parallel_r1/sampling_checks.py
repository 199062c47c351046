"""The sampling settings' ranges, checked where a recipe or an eval config is built, so a bad
value is refused by `run --check` before any stage runs (the engine's `SamplingParams` and
`ParallelParams` enforce the same ranges again when a request is made). Pure Python.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.errors import ConfigError

_RULES = (
    ("temperature", lambda v: v >= 0, "must be >= 0 (0 = greedy)"),
    ("top_p", lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ("top_k", lambda v: v >= 0, "must be >= 0 (0 = off)"),
    ("max_tokens", lambda v: v >= 1, "must be >= 1"),
    ("num_paths", lambda v: v is None or 2 <= v <= 8, "must be in 2..8, or null to let the "
                                                       "model decide"),
    ("max_path_tokens", lambda v: v >= 2, "must be >= 2 (<Path> and </Path>)"),
    ("max_blocks", lambda v: v >= 0, "must be >= 0"),
)


def check_sampling(values: dict[str, Any], prefix: str = "") -> None:
    """Check the sampling settings present in `values` (name -> value).

    Raises:
        ConfigError: the first value out of range, its field named `prefix + name`.
    """
    for name, ok, fix in _RULES:
        if name in values and not ok(values[name]):
            raise ConfigError(f"{fix}, got {values[name]!r}", field=prefix + name)
    if values.get("temperature") == 0 and (values.get("top_p", 1) < 1 or values.get("top_k", 0)):
        raise ConfigError("temperature 0 is greedy and ignores top_p and top_k; leave them "
                          "at 1 and 0", field=prefix + "temperature")
