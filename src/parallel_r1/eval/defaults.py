"""What `parallel-r1 eval MODEL` uses for the settings it is not given, and where it writes.

A setting not given comes from the model's own record (`parallel_r1.models.settings`): its
template, layout and paths per block and, when no benchmarks are given, every setting of the
latest evaluation recorded for it, so that `eval MODEL` alone reproduces the table on its card.
Else `EvalConfig`'s default. A given template, layout or path count that contradicts the record
is used, with a one-line warning.

The default output folder is `eval-out/<label>-<hash>` (`$PARALLEL_R1_EVAL_DIR` replaces
`eval-out`): the label is the recipe and stage the model records, else its folder name; the hash
covers the model, the backend and every setting that decides a sample, so two models or two
settings never share a folder, and a rerun of the same eval resumes its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from parallel_r1.eval.evaluate import EvalConfig

EVAL_DIR_ENV = "PARALLEL_R1_EVAL_DIR"
FLAGS = {"graders": "--grader", "num_paths": "--paths"}  # EvalConfig field -> its command-line flag, where they differ


def settle_eval(model: str, given: dict[str, Any]) -> tuple[EvalConfig, list[str]]:
    """The EvalConfig of MODEL from the settings `given` (EvalConfig fields; None = not given).

    `num_paths` 0 (`--paths 0`) means None: the model decides how many paths to open.

    Returns:
        (config, warnings): one line per given template/mode/num_paths that contradicts the
        model's record.

    Raises:
        ConfigError: a bad setting, an unknown benchmark or grader (named), before any file is
            written.
    """
    from parallel_r1.models.settings import recorded, settle

    identity, last_eval = recorded(model) if model != "tiny" else ({}, {})
    record = {**(last_eval if given.get("benchmarks") is None else {}), **identity}
    fields = {f.name: f.default for f in dataclasses.fields(EvalConfig) if f.init}
    defaults = {k: fields[k] for k in (*given, *record) if k in fields}
    values, warnings = settle(given, record, defaults, model=model, flags=FLAGS)
    if values.get("num_paths") == 0:  # --paths 0, as on `serve`: the model decides
        values["num_paths"] = None
    return EvalConfig(**values), warnings


def default_out(model: str, cfg: EvalConfig, engine: dict[str, Any] | None = None) -> Path:
    """Where an eval of `model` under `cfg` writes when no output folder is given.

    Args:
        engine: what else decides a sample (backend, server URL, served name), hashed too.
    """
    from parallel_r1.models.load import read_provenance

    path = Path(model).expanduser()
    is_dir = model != "tiny" and path.is_dir()
    meta = (read_provenance(path) if is_dir else None) or {}
    label = "-".join(str(meta[k]) for k in ("recipe", "stage") if meta.get(k))
    label = label or path.name or model
    source = str(path.resolve()) if is_dir else model
    key = json.dumps({"model": source, "engine": engine or {}, "sampling": cfg.sampling()},
                     sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return Path(os.environ.get(EVAL_DIR_ENV, "eval-out")) / f"{_safe(label)}-{digest}"


def _safe(label: str) -> str:
    """A folder name: path separators and spaces become '-'."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in label).strip("-.") or "model"
