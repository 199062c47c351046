"""The per-step training log: every record the trainer logs, one JSON line each (main process).

Lines are appended with one write and an fsync (`parallel_r1.files.append_jsonl`), so a kill
leaves at most a torn last line; a resumed stage first trims the log back to its checkpoint
(`train.checkpoint.trim_step_logs`), and readers keep one row per `files.step_key`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class JsonlMetrics(TrainerCallback):
    """Write every log record of the trainer (main process) as one JSON line with its step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            from parallel_r1.files import append_jsonl

            append_jsonl(self.path, {"step": state.global_step,
                                     **{k: _plain(v) for k, v in logs.items()}})


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
