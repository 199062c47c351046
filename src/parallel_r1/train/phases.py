"""Where a training step's time goes: named, timed phases for every optimiser step.

A `PhaseTimer` keeps exclusive time per phase (a phase opened inside another pauses the outer
one), so the phases of a step add up to its wall time minus `other` (data loading, callbacks,
logging). `PhaseTimedTrainer` is a mixin for transformers' Trainer (TRL's trainers included)
that times the phases the Trainer runs itself and writes, in every log record,
`time/<phase>_s` (seconds per optimiser step, averaged over the steps since the previous record),
`time/step_s`, `time/other_s` and `time_share/<phase>` (share of the step's wall time). Each
phase is also a `torch.profiler.record_function` range, so a torch profile shows the same names.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

from transformers import TrainerCallback

# The phases in the order a GRPO step runs them; SFT uses the last three.
PHASES = {
    "sync": "copying the trainer's weights into the rollout engine (vLLM; the built-in engine "
            "samples from the live model and needs none)",
    "rollout": "the engine samples the completions (refill rounds are counted under filter)",
    "reward": "the rewards of the sampled completions",
    "filter": "dynamic-sampling refill rounds (their sampling and scoring) and the keep mask",
    "advantages": "TRL batches the rollouts and computes the group advantages",
    "logprobs": "old / reference log-prob passes TRL runs before the loss (0 for on-policy, beta=0)",
    "logprob_check": "engine vs trainer log-prob check (free unless the model has dropout)",
    "forward_backward": "the loss's forward and backward passes",
    "optimizer": "gradient clipping, optimiser step, scheduler step, zeroing the gradients",
    "checkpoint": "writing checkpoint-N (counted in the next step's record; the last one in the "
                  "final record as time/end/checkpoint_s)",
}
SHORT = {"sync": "sync", "rollout": "roll", "reward": "rew", "filter": "filt", "advantages": "adv",
         "logprobs": "lp", "logprob_check": "check", "forward_backward": "fwd/bwd",
         "optimizer": "opt", "checkpoint": "ckpt", "other": "other"}


class PhaseTimer:
    """Exclusive wall-clock time per named phase; phases nest (the inner one pauses the outer).

    Args:
        synchronize: called before every clock reading (e.g. torch.cuda.synchronize), so that
            queued GPU work is charged to the phase that queued it.
        clock: seconds, monotonic (time.perf_counter).
    """

    def __init__(self, synchronize: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.seconds: dict[str, float] = defaultdict(float)
        self.synchronize = synchronize
        self.clock = clock
        self._stack: list[tuple[str, Any]] = []
        self._since = 0.0

    @property
    def current(self) -> str | None:
        """The innermost open phase, or None."""
        return self._stack[-1][0] if self._stack else None

    def _now(self) -> float:
        if self.synchronize is not None:
            self.synchronize()
        return self.clock()

    def _charge(self, now: float) -> None:
        if self._stack:
            self.seconds[self._stack[-1][0]] += now - self._since
        self._since = now

    def start(self, name: str) -> None:
        """Open phase `name` (pausing the open one); pair with `stop`."""
        from torch.profiler import record_function

        self._charge(self._now())
        label = record_function(f"phase/{name}")
        label.__enter__()
        self._stack.append((name, label))

    def stop(self) -> None:
        """Close the innermost phase; the outer one resumes. No-op when none is open."""
        if not self._stack:
            return
        self._charge(self._now())
        _, label = self._stack.pop()
        label.__exit__(None, None, None)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """`with timer.phase("reward"): ...` charges the block's exclusive time to `name`."""
        self.start(name)
        try:
            yield
        finally:
            self.stop()

    def take(self) -> dict[str, float]:
        """Seconds per phase since the last `take` (open phases charged up to now), then reset."""
        self._charge(self._now())
        out = dict(self.seconds)
        self.seconds.clear()
        return out


def phase_of(trainer: Any, name: str) -> Any:
    """`trainer.phases.phase(name)`, or a no-op for a trainer without phase timing."""
    timer = getattr(trainer, "phases", None)
    return timer.phase(name) if timer is not None else nullcontext()


def phase_metrics(seconds: dict[str, float], wall: float, num_steps: int) -> dict[str, float]:
    """Per-step phase times and shares for one log record.

    Args:
        seconds: phase -> seconds spent since the previous record (`PhaseTimer.take`).
        wall: wall-clock seconds since the previous record.
        num_steps: optimiser steps since the previous record (0 is treated as 1).
    Returns:
        {"time/<phase>_s", "time/other_s", "time/step_s", "time_share/<phase>", ...}: seconds per
        step for every phase in PHASES (0 when it did not run) plus any other timed name, and
        each one's share of `wall`.
    """
    n = max(num_steps, 1)
    names = list(PHASES) + sorted(set(seconds) - set(PHASES))
    out = {f"time/{p}_s": seconds.get(p, 0.0) / n for p in names}
    other = max(wall - sum(seconds.values()), 0.0)
    out["time/other_s"] = other / n
    out["time/step_s"] = wall / n
    for p in names + ["other"]:
        out[f"time_share/{p}"] = out[f"time/{p}_s"] * n / wall if wall > 0 else 0.0
    return out


def time_postfix(logs: dict[str, Any], min_share: float = 0.05) -> str:
    """'roll 61% fwd/bwd 27% opt 6%': the phases of a log record that took >= `min_share`."""
    parts = []
    for p in list(PHASES) + ["other"]:
        share = logs.get(f"time_share/{p}")
        if isinstance(share, (int, float)) and share >= min_share:
            parts.append(f"{SHORT.get(p, p)} {share:.0%}")
    return " ".join(parts)


class _PhaseClock(TrainerCallback):
    """Marks the start of training and times the optimiser step through the Trainer's events."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.phases.take()
        self.trainer._phase_mark = (time.perf_counter(), state.global_step)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.phases.start("optimizer")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.trainer.phases.current == "optimizer":  # scheduler step and zero_grad included
            self.trainer.phases.stop()


class PhaseTimedTrainer:
    """Mixin (put it before the Trainer class) adding phase times to every log record.

    Times forward_backward (`training_step`), optimizer (`_clip_grad_norm` and the optimiser
    step, through a callback) and checkpoint (`_save_checkpoint`); subclasses open the other
    phases with `self.phases.phase(name)`.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        import torch

        sync = torch.cuda.synchronize if torch.cuda.is_available() else None
        self.phases = PhaseTimer(synchronize=sync)
        self._phase_mark = (time.perf_counter(), 0)
        super().__init__(*args, **kwargs)
        self.add_callback(_PhaseClock(self))

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.phases.phase("forward_backward"):
            return super().training_step(*args, **kwargs)

    def _clip_grad_norm(self, model: Any) -> Any:
        with self.phases.phase("optimizer"):
            return super()._clip_grad_norm(model)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from parallel_r1.train.progress import quiet_saving

        with self.phases.phase("checkpoint"), quiet_saving():
            super()._save_checkpoint(model, trial)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        logs.update(self.phase_record())
        super().log(logs, *args, **kwargs)

    def phase_record(self) -> dict[str, float]:
        """Phase times since the previous record, per optimiser step (see `phase_metrics`); a
        record with no new step (the final summary) gets `time/end/<phase>_s`, the seconds
        spent after the last step's record (its checkpoint)."""
        now, step = time.perf_counter(), self.state.global_step
        started, last_step = self._phase_mark
        self._phase_mark = (now, step)
        seconds = self.phases.take()
        if step == last_step:
            return {f"time/end/{p}_s": v for p, v in seconds.items() if v > 0}
        return phase_metrics(seconds, now - started, step - last_step)
