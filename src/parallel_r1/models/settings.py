"""What a model directory records about how it is run, and how a command's settings follow it.

A model written by `models.save` records in `parallel_r1.json` the layout it was trained in
(`mode`), its prompt template (`training.template`), its paths per block (`num_paths`) and, for
the eval stages that measured it, each eval's settings (`evals.<stage>.settings`, the latest
named by `last_eval`). A command reads them through `settle`: a value given on the command line
wins (with a one-line warning where it contradicts what the model records of itself), else the
record, else the command's default. A model with no record keeps the defaults. Pure (json only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What the model is: a given value that contradicts the record gets a warning.
IDENTITY = ("mode", "template", "num_paths")
# What an eval measured it with (EvalConfig fields); replayed as one set, never warned about.
EVAL_SETTINGS = ("benchmarks", "samples", "limit", "chat", "max_tokens", "temperature", "top_p",
                 "top_k", "num_paths", "max_path_tokens", "max_blocks", "seed", "graders",
                 "drop_suspect", "mode", "template")


def recorded(model: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(identity, eval settings) that the model directory `model` records; ({}, {}) for a hub
    id, "tiny", or a directory without `parallel_r1.json`.

    identity: "mode", "template", "num_paths" (those recorded and not null). eval settings: the
    `EVAL_SETTINGS` of the latest recorded evaluation (empty when none was recorded).
    """
    from parallel_r1.models.load import read_provenance

    path = Path(model).expanduser()
    meta = (read_provenance(path) if path.is_dir() else None) or {}
    training = meta.get("training") or {}
    identity = {"mode": meta.get("mode"), "template": training.get("template"),
                "num_paths": meta.get("num_paths")}
    identity = {k: v for k, v in identity.items() if v is not None}
    last = (meta.get("evals") or {}).get(meta.get("last_eval") or "") or {}
    settings = {k: v for k, v in (last.get("settings") or {}).items() if k in EVAL_SETTINGS}
    return identity, settings


def settle(given: dict[str, Any], record: dict[str, Any], defaults: dict[str, Any], *,
           model: str, flags: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Each setting of `defaults`: the value `given` (None = not given), else the `record`'s,
    else the default.

    Args:
        model: the model's name or directory, for the warnings.
        flags: setting -> how the user wrote it ("--paths"); default "--<setting>".

    Returns:
        (values, warnings): one warning line per given `IDENTITY` value that differs from the
        record, naming both values (the given one is used).
    """
    values, warnings = {}, []
    for key, default in defaults.items():
        mine, theirs = given.get(key), record.get(key)
        if mine is None:
            values[key] = theirs if theirs is not None else default
            continue
        values[key] = mine
        if key in IDENTITY and theirs is not None and mine != theirs:
            flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
            warnings.append(f"warning: {flag} {mine} differs from the {key.replace('_', ' ')} "
                            f"{theirs} that {model} records (parallel_r1.json); using {mine}")
    return values, warnings
