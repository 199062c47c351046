"""Whether an eval folder may be resumed under a config: its `config.json` binds a rerun only
once samples were drawn under it. Pure (json only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parallel_r1.errors import ConfigError


def check_resume(out: Path, new: dict[str, Any], defaults: dict[str, Any], *,
                 config_file: str, samples_file: str) -> None:
    """Refuse to resume `out` when the samples it holds were drawn with other settings.

    A folder with no samples (a run that failed before its first one) binds nothing: this run's
    config replaces the one it left.

    Args:
        new: the settings of this run (model and sampling settings).
        defaults: values of settings that older folders do not record.
    Raises:
        ConfigError: `out` holds samples drawn with other settings (names them), or its config
            file is not valid JSON (names the file, line and column).
    """
    path, samples = out / config_file, out / samples_file
    if not path.exists() or not samples.exists() or samples.stat().st_size == 0:
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg} (column {exc.colno}); use another --out, "
                          "or delete the folder to start over", file=str(path),
                          line=exc.lineno) from None
    old_settings = {**defaults, **(old.get("sampling", {}) if isinstance(old, dict) else {})}
    diff = [k for k in new if k in old_settings and old_settings[k] != new[k]]
    if diff:
        raise ConfigError(f"{out} holds samples drawn with other settings ({', '.join(diff)}); "
                          "use another --out or the same settings", field=diff[0])
