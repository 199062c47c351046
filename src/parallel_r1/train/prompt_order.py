"""The order GRPO draws prompts in, as a function of (seed, epoch), so a resumed run draws the same.

TRL 1.16's `RepeatSampler` seeds one generator when it is built and draws a fresh permutation at
each pass over the data: epoch e's order is the (e+1)-th draw. transformers' Trainer resumes in
epoch e without iterating epochs 0..e-1 (it calls `set_epoch(e)` and skips the batches already
trained in e), and RepeatSampler has no `set_epoch`, so a run resumed inside epoch >= 1 drew
epoch 0's order again (issue 19 case 3). `EpochRepeatSampler` keeps TRL's orders exactly (an
uninterrupted run is unchanged) and draws epoch e's from a fresh generator: seed, e draws skipped.
accelerate's `set_epoch` does not reach a sampler under its 2-process shard once batches are
skipped, so `EpochOrder` also sets the epoch from the trainer's state at each epoch's start.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from transformers import TrainerCallback
from trl.trainer.utils import RepeatSampler


class EpochRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler whose order in epoch e depends only on (seed, e), set by `set_epoch`.

    An iteration without `set_epoch` before it continues with the next epoch, as TRL's does.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass draws the order of (the Trainer calls it before each pass)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            self.generator = epoch_generator(self.seed, self.num_samples, self.epoch)
        self.epoch += 1
        yield from super().__iter__()


class EpochOrder(TrainerCallback):
    """Tells `sampler` the epoch that begins: int(state.epoch), which is e at the start of
    epoch e and, on resume, the checkpoint's e + (steps done in e) / (steps in e)."""

    def __init__(self) -> None:
        self.sampler: EpochRepeatSampler | None = None

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(int(state.epoch or 0))


def epoch_generator(seed: int | None, num_samples: int, epoch: int) -> torch.Generator:
    """The generator RepeatSampler holds at the start of `epoch`: seeded as TRL seeds it, with
    the `epoch` permutations of the epochs before drawn."""
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    for _ in range(epoch):
        torch.randperm(num_samples, generator=generator)
    return generator


def generation_cycle_problem(save_steps: int, gradient_accumulation_steps: int,
                             steps_per_generation: int, num_iterations: int) -> str | None:
    """Why a checkpoint could fall inside one generation's reuse, or None when none can.

    TRL generates once every `steps_per_generation * num_iterations` micro-steps and trains on
    slices of that buffer in between; the buffer and TRL's micro-step counter are not in a
    checkpoint, so a run resumed between them would generate again, with other weights and
    seeds (not what the uninterrupted run trained on). Every checkpoint (each `save_steps`
    optimiser steps of `gradient_accumulation_steps` micro-steps) must end a cycle.
    """
    cycle = steps_per_generation * num_iterations  # micro-steps one generation is trained for
    if save_steps * gradient_accumulation_steps % cycle == 0:
        return None
    return (f"save_steps ({save_steps}) x gradient_accumulation_steps "
            f"({gradient_accumulation_steps}) must be a multiple of steps_per_generation "
            f"({steps_per_generation}) x num_iterations ({num_iterations}): a checkpoint inside "
            "a generation's reuse cannot be resumed exactly (TRL does not save the generation)")
