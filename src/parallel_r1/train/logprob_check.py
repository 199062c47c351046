"""The engine/trainer log-prob check, read off passes a GRPO step runs anyway.

The check compares the engine's sampling log-prob of every trained token with the trainer's
(`logprob/engine_trainer_abs_diff/{max,mean,p99}`). It needs no forward pass of its own:
- the loss's forward of a micro-batch runs at the weights that sampled it (no optimiser step in
  between), so its log-probs (kept by the trainer's log-prob hook in `_loss_logps`) are compared;
- when TRL computes `old_per_token_logps` (micro-batches after an update; vLLM's importance
  sampling), those were computed at the sampling weights and are compared instead.
Only a model with active dropout (its train-mode log-probs are noisy) pays an extra eval-mode pass.
`logprob_check_every` spaces the check out (every N optimiser steps). A trainer that trains on a
deliberate layout mismatch (`sampled_layout` set) logs the same figures as
`logprob/layout_mismatch_abs_diff/*`: large by design, never to be read as an engine bug.
"""

from __future__ import annotations

from typing import Any

import torch

from parallel_r1.train.phases import phase_of


class LogprobCheck:
    """GRPOTrainer mixin (before the TRL class): the log-prob check at no extra pass."""

    check_logprobs: bool = True
    logprob_check_every: int = 1
    is_check_free: bool = True  # False for a model with dropout (see `has_dropout`)
    sampled_layout: str | None = None  # the rollouts' layout when it differs on purpose
    _loss_logps: torch.Tensor | None = None  # [b, Tc], set by the log-prob hook in the loss
    _step_deltas: list | None = None  # this step's |engine - trainer| per micro-batch

    def is_check_due(self) -> bool:
        """Whether the optimiser step now running measures the engine/trainer log-prob gap."""
        every = self.logprob_check_every
        return self.check_logprobs and bool(every) and self.state.global_step % every == 0

    def check_generation_batch(self, batch: dict[str, torch.Tensor], mode: str) -> None:
        """The check where the loss pass cannot give it: from TRL's old log-probs (free), or,
        for a model with dropout, an explicit eval-mode pass. Otherwise left to `compute_loss`."""
        if "sampling_per_token_logps" not in batch or not self.is_check_due():
            return
        if self.is_check_free and "old_per_token_logps" not in batch:
            return
        with phase_of(self, "logprob_check"):
            for name, value in self.mismatch_metrics(batch).items():
                self._metrics[mode][name].append(value)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._loss_logps = None
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self._loss_logps is not None and model.training:
            with phase_of(self, "logprob_check"):
                self.check_loss_pass(inputs, self._loss_logps)
        self._loss_logps = None
        return loss

    def check_loss_pass(self, inputs: dict[str, torch.Tensor], logp: torch.Tensor) -> None:
        """Fold one micro-batch's loss log-probs [b, Tc] into this step's check, and log the
        step's figures after its last micro-batch."""
        if (not self.is_check_free or "sampling_per_token_logps" not in inputs
                or "old_per_token_logps" in inputs or not self.is_check_due()):
            return
        self._step_deltas = (self._step_deltas or []) + [
            engine_deltas(logp, inputs, trained_only=True)]
        if (self._step + 1) % self.current_gradient_accumulation_steps == 0:  # TRL counts after
            for name, value in self.mismatch_stats(torch.cat(self._step_deltas)).items():
                self._metrics["train"][name].append(value)
            self._step_deltas = None

    @torch.no_grad()
    def logprob_deltas(self, batch: dict[str, torch.Tensor], *, trained_only: bool = False
                       ) -> torch.Tensor:
        """|engine log-prob - trainer log-prob| [N] over the batch's real completion tokens
        (only those trained on with `trained_only`), where the engine gave one (not NaN); from
        TRL's old log-probs when it computed them, else an extra eval-mode forward pass."""
        logp = batch.get("old_per_token_logps")
        if logp is None:
            ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)  # [B, T]
            mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)  # [B, T]
            was_training = self.model.training
            self.model.eval()  # as the engine samples
            try:
                logp, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, ids, mask, batch["completion_ids"].size(1))  # [B, Tc]
            finally:
                self.model.train(was_training)
        return engine_deltas(logp, batch, trained_only=trained_only)

    def logprob_gap(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Largest |engine log-prob - trainer log-prob| over the batch's real completion tokens."""
        delta = self.logprob_deltas(batch)
        return delta.max() if delta.numel() else torch.zeros(())

    def mismatch_metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """The engine/trainer mismatch on the batch's trained tokens (see `mismatch_stats`)."""
        return self.mismatch_stats(self.logprob_deltas(batch, trained_only=True))

    def mismatch_stats(self, delta: torch.Tensor) -> dict[str, float]:
        """max, mean and p99 of |engine - trainer| [N] over all processes (the largest of the
        processes' p99), as `logprob/engine_trainer_abs_diff/*` (`logprob/layout_mismatch_
        abs_diff/*` under a deliberate mismatch); every process must call it."""
        device = self.accelerator.device
        stats = torch.zeros(4, device=device)  # max, sum, count, p99
        if delta.numel():
            stats = torch.stack([delta.max(), delta.sum(), delta.new_tensor(float(delta.numel())),
                                 torch.quantile(delta[:2**24], 0.99)]).to(device)
        every = self.accelerator.gather(stats[None]).view(-1, 4)
        count = every[:, 2].sum().clamp(min=1)
        name = "logprob/layout_mismatch_abs_diff" if self.sampled_layout else \
            "logprob/engine_trainer_abs_diff"
        return {f"{name}/max": every[:, 0].max().item(),
                f"{name}/mean": (every[:, 1].sum() / count).item(),
                f"{name}/p99": every[:, 3].max().item()}


def engine_deltas(logp: torch.Tensor, batch: dict[str, torch.Tensor], *,
                  trained_only: bool = False) -> torch.Tensor:
    """|trainer log-prob `logp` [B, Tc] - the batch's engine log-prob| [N] over real completion
    tokens (trained ones only with `trained_only`), tokens the engine could not score left out."""
    real = batch["completion_mask"].bool()  # [B, Tc]
    if trained_only and batch.get("tool_mask") is not None:
        real = real & batch["tool_mask"].bool()
    delta = (logp - batch["sampling_per_token_logps"]).abs()[real]
    return delta[~torch.isnan(delta)].float()


def has_dropout(model: Any) -> bool:
    """Whether the model drops anything in train mode (then train-mode log-probs are noisy)."""
    config = getattr(model, "config", None)
    if float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0:
        return True
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
