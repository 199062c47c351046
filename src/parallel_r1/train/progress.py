"""One progress bar of optimiser steps per trainer, in place of transformers' log printer.

The bar's postfix shows the latest loss, reward, accuracy and parallel ratio, and where the
step's time went (`time=roll 61% fwd/bwd 27% ...`, from `parallel_r1.train.phases`). Checkpoints
are written without transformers' own "Writing model shards" bar, so nothing interleaves.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from parallel_r1.train.phases import time_postfix

SHOWN = {"loss": "loss", "rollout/reward": "reward", "rollout/accuracy": "acc",
         "rollout/parallel_ratio": "parallel"}


class StepProgress(TrainerCallback):
    """tqdm over optimiser steps with the latest loss, reward, accuracy, parallel ratio, time."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and os.environ.get("PARALLEL_R1_PROGRESS", "1") != "0":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.name,
                            unit="step", dynamic_ncols=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
               **kwargs: Any) -> None:
        shown = {short: f"{logs[key]:.3f}" for key, short in SHOWN.items()
                 if logs and isinstance(logs.get(key), (int, float))}
        if self.bar is not None and shown:  # a step's record (not the final summary)
            shares = time_postfix(logs)
            # a forced redraw only on a terminal; in a log file the next update (mininterval) shows it
            self.bar.set_postfix(shown | ({"time": shares} if shares else {}),
                                 refresh=sys.stderr.isatty())

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def quiet_progress(trainer: Any, name: str) -> Any:
    """Replace the trainer's per-log printing (and its own bar) with one StepProgress bar."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StepProgress(name))
    return trainer


@contextmanager
def quiet_saving() -> Iterator[None]:
    """Within the block, transformers and the hub show no progress bars (restored after)."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    if was_enabled:
        logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()
