"""GRPO through TRL's GRPOTrainer with rollouts from our engine and structured log-probs.

The step reads as the paper's: rollout -> score -> filter (EngineRollouts, the `rollout_func`)
-> advantages -> log-probs -> loss -> step (TRL). The subclass changes one computation: in
structured mode the per-token log-probs use the mask and positions of
`parallel_r1.structure.batch_structure`, so they equal the engine's sampling log-probs. It
overrides a private TRL method, so the TRL minor version is pinned and checked at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import trl
from trl import GRPOConfig, GRPOTrainer

from parallel_r1.format.tags import TagIds
from parallel_r1.structure import batch_structure
from parallel_r1.train.logs import JsonlMetrics
from parallel_r1.train.rollout import EngineRollouts

PINNED_TRL = (1, 16)
_found = tuple(int(x) for x in trl.__version__.split(".")[:2])
if _found != PINNED_TRL:
    raise ImportError(
        f"parallel_r1.train.grpo overrides GRPOTrainer._get_per_token_logps_and_entropies of TRL "
        f"{PINNED_TRL[0]}.{PINNED_TRL[1]}.x, but TRL {trl.__version__} is installed; install "
        f"trl=={PINNED_TRL[0]}.{PINNED_TRL[1]}.* or re-check the override against the new version")


def reward_from_rollout(prompts: list, completions: list, reward: list, **_: Any) -> list[float]:
    """TRL reward function: the score EngineRollouts already computed (extra field `reward`)."""
    return [float(r) for r in reward]


class ParallelGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log-probs follow the parallel structure in structured mode."""

    def __init__(self, *args: Any, structured: bool = True, check_logprobs: bool = True,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.structured = structured
        self.check_logprobs = check_logprobs
        self.tags = TagIds.from_tokenizer(self.processing_class)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           batch_size=None, compute_entropy=False,
                                           compute_aux_loss=False, **multimodal):
        """Structured mode: TRL's text-only computation with our 4-D mask and positions.

        input_ids [B, T] (left-padded prompt + right-padded completion), attention_mask [B, T];
        returns log-probs [B, logits_to_keep], entropies or None, aux loss or None.
        """
        if not self.structured:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                compute_aux_loss, **multimodal)
        if any(v is not None for v in multimodal.values()):
            raise NotImplementedError("structured log-probs support text-only models")
        batch_size = batch_size or input_ids.size(0)
        start = input_ids.size(1) - logits_to_keep  # first completion column, every row
        dtype = next(model.parameters()).dtype
        logps, entropies, aux = [], [], []
        for lo in range(0, input_ids.size(0), batch_size):
            ids = input_ids[lo: lo + batch_size]  # [b, T]
            real = attention_mask[lo: lo + batch_size]  # [b, T]
            pos, mask = batch_structure(ids.cpu(), real.cpu(), self.tags, start, dtype=dtype)
            labels = ids.masked_fill(real == 0, -100)  # [b, T]
            labels[:, :-logits_to_keep] = -100
            extra = {"output_router_logits": True} if compute_aux_loss else {}
            with self.accelerator.autocast():
                out = model(input_ids=ids, attention_mask=mask.to(ids.device),
                            position_ids=pos.to(ids.device), labels=labels, fused_lm_head=True,
                            **extra)
            logps.append(out.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(out.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux.append(out.aux_loss)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux).mean() if compute_aux_loss else None)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        rollouts = self.rollout_func
        if isinstance(rollouts, EngineRollouts):
            for name, value in rollouts.last_metrics.items():
                self._metrics[mode][name].append(_gather_mean(self, value))
        if self.check_logprobs and "sampling_per_token_logps" in output:
            diff = self.logprob_gap(output)
            self._metrics[mode]["logprob/max_abs_diff_engine_trainer"].append(
                self.accelerator.gather(diff.reshape(1)).max().item())
        return output

    @torch.no_grad()
    def logprob_gap(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Largest |engine log-prob - trainer log-prob| over the batch's real completion tokens."""
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)  # [B, T]
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)  # [B, T]
        keep = batch["completion_ids"].size(1)
        logp, _, _ = self._get_per_token_logps_and_entropies(self.model, ids, mask, keep)
        real = batch["completion_mask"].bool()  # [B, Tc]
        delta = (logp - batch["sampling_per_token_logps"]).abs()[real]
        return delta.max() if delta.numel() else torch.zeros((), device=logp.device)


def _gather_mean(trainer: GRPOTrainer, value: float) -> float:
    t = torch.tensor([value], dtype=torch.float32, device=trainer.accelerator.device)
    return trainer.accelerator.gather(t).nanmean().item()


@dataclass
class GRPOHyper:
    """Optimisation and loss settings of one GRPO run (SPEC 5.5 defaults)."""

    learning_rate: float = 1e-6
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.01
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    per_device_batch_size: int = 8  # completions per device per micro-step
    gradient_accumulation_steps: int = 1
    num_generations: int = 8
    steps_per_generation: int | None = None
    max_steps: int = 100
    loss_type: str = "dapo"  # "dapo" = token-mean (verl's token-mean, the paper's)
    advantage: str = "grpo"  # "grpo" (std-normalised) or "dr_grpo" (no std)
    epsilon: float = 0.2
    epsilon_high: float = 0.2  # 0.28 for S2 (clip-higher)
    beta: float = 0.0  # KL to the reference; 0 = no reference model
    mask_truncated_completions: bool = False
    temperature: float = 1.0
    max_completion_length: int = 3000
    save_steps: int = 10
    logging_steps: int = 1
    seed: int = 0
    bf16: bool = False


def grpo_args(output_dir: str | Path, hp: GRPOHyper, **extra: Any) -> GRPOConfig:
    """The GRPOConfig for our rollout function (generation is ours; TRL sees token ids)."""
    return GRPOConfig(
        output_dir=str(output_dir), learning_rate=hp.learning_rate, adam_beta1=hp.adam_beta1,
        adam_beta2=hp.adam_beta2, weight_decay=hp.weight_decay,
        lr_scheduler_type=hp.lr_scheduler_type, warmup_steps=hp.warmup_ratio,
        max_grad_norm=hp.max_grad_norm, per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        num_generations=hp.num_generations, steps_per_generation=hp.steps_per_generation,
        max_steps=hp.max_steps, loss_type=hp.loss_type, epsilon=hp.epsilon,
        epsilon_high=hp.epsilon_high, beta=hp.beta,
        scale_rewards="group" if hp.advantage == "grpo" else "none",
        mask_truncated_completions=hp.mask_truncated_completions, temperature=hp.temperature,
        max_completion_length=hp.max_completion_length, save_steps=hp.save_steps,
        save_strategy="steps", logging_steps=hp.logging_steps, seed=hp.seed, data_seed=hp.seed,
        bf16=hp.bf16, report_to=[], disable_tqdm=True, optim="adamw_torch",
        remove_unused_columns=False, **extra)


def build_grpo_trainer(model: Any, tokenizer: Any, prompts: Sequence[str], rollouts: EngineRollouts,
                       *, output_dir: str | Path, hp: GRPOHyper, structured: bool = True,
                       check_logprobs: bool = True, callbacks: list | None = None,
                       **extra_args: Any) -> ParallelGRPOTrainer:
    """A ready ParallelGRPOTrainer over `prompts` (rendered prompt texts, golds in `rollouts`).

    Raises:
        ValueError: the advantage is not one TRL's GRPO implements ("grpo", "dr_grpo").
    """
    from datasets import Dataset

    from parallel_r1.train.progress import quiet_progress

    if hp.advantage not in ("grpo", "dr_grpo"):
        raise ValueError(f"advantage '{hp.advantage}' is not available in TRL's GRPOTrainer; "
                         "known: grpo, dr_grpo")
    callbacks = list(callbacks or []) + [JsonlMetrics(Path(output_dir) / "metrics.jsonl")]
    trainer = ParallelGRPOTrainer(
        model=model, reward_funcs=[reward_from_rollout], args=grpo_args(output_dir, hp, **extra_args),
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer, rollout_func=rollouts, callbacks=callbacks,
        structured=structured, check_logprobs=check_logprobs)
    return quiet_progress(trainer, "GRPO")
