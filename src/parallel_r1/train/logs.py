"""The per-step training log: every record the trainer logs, one JSON line each (main process).

Lines are appended with one write and an fsync (`parallel_r1.files.append_jsonl`), so a kill
leaves at most a torn last line; a resumed stage first trims the log back to its checkpoint
(`train.checkpoint.trim_step_logs`), and readers keep one row per `files.step_key`.

Figures a trainer counts from the start of its own `train()` call are made whole-run after a
resume, so they equal an uninterrupted run's: `num_tokens` (SFT keeps it outside the trainer
state) goes on from the checkpoint's count, and the summary `train_loss` averages every step,
the ones before the resume included (read back from this log). Both are exact when the
checkpoint's step was logged (the default logs every step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class JsonlMetrics(TrainerCallback):
    """Write every log record of the trainer (main process) as one JSON line with its step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.start_step = 0  # the step this `train()` call started from (a resume: > 0)
        self.loss_before = 0.0  # sum of the per-step losses of the steps before it
        self.tokens_before = 0  # num_tokens logged at it

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_step = state.global_step
        if state.is_world_process_zero and self.start_step:
            self.loss_before, self.tokens_before = logged_before(self.path, self.start_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and logs):
            return
        if self.start_step:
            whole_run(logs, state.global_step, self.start_step, self.loss_before,
                      self.tokens_before, state.num_input_tokens_seen)
        from parallel_r1.files import append_jsonl

        append_jsonl(self.path, {"step": state.global_step,
                                 **{k: _plain(v) for k, v in logs.items()}})


def logged_before(path: str | Path, step: int) -> tuple[float, int]:
    """(sum of the per-step losses, last `num_tokens`) of the log rows up to `step`.

    A row's `loss` is the mean over the steps since the row before it, so it counts that many
    times. (0.0, 0) when the log does not exist.
    """
    from parallel_r1.files import dedupe, read_log, step_key

    rows = dedupe((row for _, row in read_log(path)[0]), step_key)
    rows = sorted((r for r in rows if "train_runtime" not in r
                   and isinstance(r.get("step"), int) and r["step"] <= step),
                  key=lambda r: r["step"])
    loss, last, tokens = 0.0, 0, 0
    for row in rows:
        if isinstance(row.get("loss"), (int, float)):
            loss += row["loss"] * (row["step"] - last)
            last = row["step"]
        if isinstance(row.get("num_tokens"), (int, float)):
            tokens = row["num_tokens"]
    return loss, tokens


def whole_run(logs: dict[str, Any], step: int, start: int, loss_before: float,
              tokens_before: float, tokens_in_state: float) -> None:
    """Make a resumed `train()` call's figures whole-run, in place (see the module docstring).

    Args:
        logs: one log record of the trainer (its end-of-training summary holds `train_loss`,
            the mean over the steps of this call only).
        step, start: the current step and the step this call resumed from.
        loss_before, tokens_before: `logged_before(log, start)`.
        tokens_in_state: the trainer state's token count; a `num_tokens` equal to it is kept in
            the checkpoint (GRPO) and already whole-run.
    """
    tokens = logs.get("num_tokens")
    if isinstance(tokens, (int, float)) and tokens != tokens_in_state:
        logs["num_tokens"] = tokens + tokens_before
    if isinstance(logs.get("train_loss"), (int, float)) and step > 0:
        logs["train_loss"] = (loss_before + logs["train_loss"] * (step - start)) / step


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
