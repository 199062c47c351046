"""GRPO through TRL's GRPOTrainer with rollouts from our engine and layout-aware log-probs.

The step reads as the paper's: rollout -> score -> filter (EngineRollouts, the `rollout_func`)
-> advantages -> log-probs -> loss -> step (TRL), each a named, timed phase
(`parallel_r1.train.phases`). The subclass changes one computation: in the
structured and threads layouts the per-token log-probs come from one forward over the packed
sequence of `parallel_r1.structure.batch_packed` (its mask and positions; in threads the paths
beyond the first once more in their isolated contexts), read at each token's predictor, so they
equal the engine's sampling log-probs. TRL sees the plain sampled sequence throughout. It
overrides a private TRL method, so the TRL minor version is pinned and checked at import.
The engine/trainer log-prob check is read off the loss's own forward (`train.logprob_check`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import trl
from trl import GRPOConfig, GRPOTrainer

from parallel_r1.format.tags import TagIds
from parallel_r1.rl.advantages import tied_groups
from parallel_r1.structure import batch_packed
from parallel_r1.train.cards import CardedCheckpoints
from parallel_r1.train.distributed import CpuFsdp, full_params
from parallel_r1.train.logprob_check import LogprobCheck, has_dropout
from parallel_r1.train.logs import JsonlMetrics
from parallel_r1.train.phases import PhaseTimedTrainer
from parallel_r1.train.rollout import EngineRollouts
from parallel_r1.train.trainer_args import checkpointing_args

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


class ParallelGRPOTrainer(CpuFsdp, PhaseTimedTrainer, LogprobCheck, CardedCheckpoints,
                          GRPOTrainer):
    """GRPOTrainer whose log-probs follow the rollouts' layout (causal, structured, threads),
    with timed phases, the log-prob check at no extra pass, and our card in each checkpoint.

    Args:
        layout: causal | structured | threads: the layout of the trainer's log-probs; None:
            that of a `parallel_r1.rollout_func`, else causal without one (TRL's own sampling).
        sampled_layout: None (default): `layout` must be the rollouts'. Set it to the rollouts'
            layout to train in another one on purpose (`train.train_layout.MISMATCHES`, e.g.
            sampled threads, trained structured: the original code's mismatch). Then the
            engine's log-probs never enter the loss, as in the original (verl recomputes the old
            log-probs with the actor): the PPO ratio is pi_theta(y_t | ctx) / pi_old(y_t | ctx)
            with both through `layout`'s mask and positions, exactly 1 on the first update of a
            generation (TRL detaches the current log-probs) and the trainer's own forward at the
            generation's weights as pi_old on later ones (num_iterations > 1). The clip never
            sees the sampling distribution: the gradient weighs grad log pi^layout by advantages
            of samples drawn from pi^sampled, a bias equal to the mismatch. The log-prob check
            then logs the gap as `logprob/layout_mismatch_abs_diff/{max,mean,p99}`.
        check_logprobs: log |engine - trainer| log-prob (max, mean, p99) on trained tokens.
        logprob_check_every: ... every N optimiser steps.

    Raises:
        ConfigError: `layout` is unknown, differs from the rollout function's (without a
            matching `sampled_layout`, or in an unsupported pair, or under vLLM's importance
            sampling), or is None with a rollout function of another kind; before any work.
    """

    def __init__(self, *args: Any, layout: str | None = None, sampled_layout: str | None = None,
                 check_logprobs: bool = True, logprob_check_every: int = 1, **kwargs: Any):
        layout = layout_of(kwargs.get("rollout_func"), layout, sampled_layout)
        _check_mismatch_backend(sampled_layout, layout, kwargs.get("args"))
        from parallel_r1.train.prompt_order import EpochOrder
        from parallel_r1.train.vllm_colocate import colocated_llm

        with colocated_llm(kwargs.get("model"), kwargs.get("args")):  # vLLM in the model's dtype
            super().__init__(*args, **kwargs)
        self._check_resume_points()
        self.epoch_order = EpochOrder()
        self.add_callback(self.epoch_order)
        self.layout = layout
        self.sampled_layout = sampled_layout if sampled_layout != layout else None
        self.check_logprobs = check_logprobs
        self.logprob_check_every = logprob_check_every
        self.is_check_free = not has_dropout(self.model)
        self.tags = TagIds.from_tokenizer(self.processing_class)
        self.time_weight_sync()

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           batch_size=None, compute_entropy=False,
                                           compute_aux_loss=False, **multimodal):
        """TRL's log-prob hook: `token_logps`, timed as `logprobs` for TRL's old / reference
        passes, its result kept when it is the loss's pass (for the free log-prob check)."""
        is_loss = torch.is_grad_enabled()
        timed = not is_loss and self.phases.current == "advantages"
        with self.phases.phase("logprobs") if timed else nullcontext():
            out = self.token_logps(model, input_ids, attention_mask, logits_to_keep, batch_size,
                                   compute_entropy, compute_aux_loss, **multimodal)
        if is_loss:
            self._loss_logps = out[0].detach()
        return out

    def _check_resume_points(self) -> None:
        """Refuse checkpoints a resume could not continue exactly (`prompt_order`)."""
        from parallel_r1.train.prompt_order import generation_cycle_problem

        args = self.args
        if args.save_strategy != "steps":
            return
        problem = generation_cycle_problem(int(args.save_steps), args.gradient_accumulation_steps,
                                           args.steps_per_generation, self.num_iterations)
        if problem:
            raise ValueError(problem)

    def _get_train_sampler(self, dataset=None):
        """TRL's sampler, with its order per epoch restored on resume (`train.prompt_order`)."""
        from parallel_r1.train.prompt_order import EpochRepeatSampler

        sampler = super()._get_train_sampler(dataset)
        self.epoch_order.sampler = EpochRepeatSampler(
            data_source=sampler.data_source, mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size, repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle, seed=sampler.seed)
        return self.epoch_order.sampler

    def time_weight_sync(self) -> None:
        """Time the copy of the weights into vLLM (backend vllm) as the `sync` phase: TRL's copy,
        or on vLLM's CPU build an in-place reload (`train.vllm_colocate`; TRL's cannot work
        there). Each step logs `vllm/weight_syncs` (syncs so far) and `vllm/sync_by_reload`."""
        generation = getattr(self, "vllm_generation", None)
        if generation is None or not hasattr(generation, "sync_weights"):
            return
        from parallel_r1.train import vllm_colocate

        by_reload = float(vllm_colocate.install(generation))
        sync, count = generation.sync_weights, [0]

        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            with self.phases.phase("sync"):
                out = sync(*args, **kwargs)
            count[0] += 1
            self._metrics["train"]["vllm/weight_syncs"].append(float(count[0]))
            self._metrics["train"]["vllm/sync_by_reload"].append(by_reload)
            return out

        generation.sync_weights = timed_sync

    def token_logps(self, model, input_ids, attention_mask, logits_to_keep,
                    batch_size=None, compute_entropy=False,
                    compute_aux_loss=False, **multimodal):
        """Structured and threads: one forward over each row's packed sequence.

        input_ids [B, T] (left-padded prompt + right-padded completion), attention_mask [B, T];
        returns log-probs [B, logits_to_keep], entropies or None, aux loss or None.
        """
        if self.layout == "causal":
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                compute_aux_loss, **multimodal)
        if any(v is not None for v in multimodal.values()):
            raise NotImplementedError(f"{self.layout} log-probs support text-only models")
        batch_size = batch_size or input_ids.size(0)
        logps, entropies, aux = [], [], []
        for lo in range(0, input_ids.size(0), batch_size):
            out, cols = self._packed_forward(model, input_ids[lo: lo + batch_size],
                                             attention_mask[lo: lo + batch_size], logits_to_keep,
                                             compute_aux_loss)
            logps.append(out.log_probs.gather(1, cols))
            if compute_entropy:
                entropies.append(out.entropy.gather(1, cols))
            if compute_aux_loss:
                aux.append(out.aux_loss)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux).mean() if compute_aux_loss else None)

    def _packed_forward(self, model, ids, real, keep, aux):
        """The fused-head forward over a chunk's packed rows; returns it and, per completion
        column, the packed column whose next-token distribution scores it ([b, keep])."""
        start = ids.size(1) - keep  # first completion column, every row
        dtype = next(model.parameters()).dtype
        batch = batch_packed(ids.cpu(), real.cpu(), self.tags, start, layout=self.layout,
                             dtype=dtype)
        cols = batch.predictor[:, -keep:].to(ids.device)  # [b, keep]
        valid = (cols >= 0) & real[:, -keep:].bool()  # [b, keep]
        cols = cols.clamp(min=0)
        packed = batch.input_ids.to(ids.device)  # [b, T']
        shift = torch.full_like(packed, -100)  # [b, T'] label = the token a column predicts
        rows = torch.arange(ids.size(0), device=ids.device)[:, None].expand_as(cols)
        shift[rows[valid], cols[valid]] = ids[:, -keep:][valid]
        extra = {"output_router_logits": True} if aux else {}
        with self.accelerator.autocast():
            out = model(input_ids=packed, attention_mask=batch.attention_mask.to(ids.device),
                        position_ids=batch.position_ids.to(ids.device), shift_labels=shift,
                        fused_lm_head=True, **extra)
        return out, cols

    def _generate_and_score_completions(self, inputs):
        with self.phases.phase("advantages"), full_params(self.model):  # rollout, reward and
            output = super()._generate_and_score_completions(inputs)  # filter timed apart
        mode = "train" if self.model.training else "eval"
        self._zero_tied_groups(output, mode)
        rollouts = self.rollout_func
        if isinstance(rollouts, EngineRollouts):
            for name, value in rollouts.last_metrics.items():
                self._metrics[mode][name].append(_gather_mean(self, value))
        self.check_generation_batch(output, mode)  # else read off the loss's forward
        return output

    # ---- tied groups (issue #11 case 8): a fix to TRL 1.16's advantages, kept apart -------------
    def _zero_tied_groups(self, output: dict, mode: str) -> None:
        """Set exactly 0 the advantages of groups whose rewards are all equal, in place.

        TRL 1.16 computes the group mean and std in float32: for eight rewards of 1.2 the mean is
        1.1999999, the std 1.3e-7, and every advantage +0.0012 (a push on completions that carry
        no signal); its `frac_reward_zero_std` (isclose to 0 with atol 1e-8) reports 0. We know
        the rewards of this process's completions from the rollout function, gather every
        process's (a group may span processes), mark tied groups as `rl.advantages.tied_groups` does (equal up to float residue:
        max - min <= 1e-6 * max |reward|, so `0.1 * 3` and `0.3` tie), and overwrite the last
        `frac_reward_zero_std` with the exact share.
        """
        rewards = getattr(self.rollout_func, "last_rewards", None)
        adv, size = output.get("advantages"), self.num_generations
        if not rewards or adv is None or len(rewards) != adv.size(0):
            return
        local = torch.tensor(rewards, dtype=torch.float64, device=self.accelerator.device)  # [b]
        every = self.accelerator.gather(local).cpu()  # [B] global, process-major as TRL's
        if every.numel() % size:
            return
        tied = tied_groups(every.view(-1, size)).repeat_interleave(size)  # [B] (groups may span
        first = self.accelerator.process_index * len(rewards)  # processes: gathered first)
        mine = tied[first: first + len(rewards)].to(adv.device)  # [b]
        output["advantages"] = adv.masked_fill(mine, 0.0)
        frac = self._metrics[mode].get("frac_reward_zero_std")
        if frac:
            frac[-1] = tied.double().mean().item()


def layout_of(rollouts: Any, layout: str | None, sampled_layout: str | None = None) -> str:
    """The layout a ParallelGRPOTrainer trains in: `layout`, checked against the rollouts'
    (another one only as a supported deliberate mismatch named by `sampled_layout`)."""
    from parallel_r1.engine.types import MODES
    from parallel_r1.errors import ConfigError
    from parallel_r1.train.train_layout import MISMATCHES

    if layout is not None and layout not in MODES:
        raise ConfigError(f"unknown layout {layout!r}; known: {', '.join(MODES)}", field="layout")
    if sampled_layout is not None and layout is None:
        raise ConfigError("sampled_layout needs layout= (the layout to train in)",
                          field="sampled_layout")
    if isinstance(rollouts, EngineRollouts):
        mode = rollouts.params.parallel.mode
        if sampled_layout not in (None, mode):
            raise ConfigError(f"sampled_layout={sampled_layout!r} but the rollout function "
                              f"samples the {mode} layout", field="sampled_layout")
        if layout not in (None, mode) and sampled_layout is None:
            raise ConfigError(f"layout={layout!r} but the rollout function samples the {mode} "
                              f"layout; leave layout unset or pass {mode!r} (or "
                              f"sampled_layout={mode!r} to train on the mismatch on purpose)",
                              field="layout")
        if layout not in (None, mode) and (mode, layout) not in MISMATCHES:
            raise ConfigError(f"sampling {mode} and training {layout} is not supported; "
                              f"supported: {', '.join(f'{a} -> {b}' for a, b in MISMATCHES)}",
                              field="layout")
        return layout or mode
    if layout is None and rollouts is not None:
        raise ConfigError("pass layout= (causal | structured | threads): the layout your "
                          "rollout_func samples, which the log-prob pass must follow",
                          field="layout")
    return layout or "causal"


def _check_mismatch_backend(sampled: str | None, layout: str, args: Any) -> None:
    if sampled in (None, layout) or not getattr(args, "use_vllm", False) or \
            not getattr(args, "vllm_importance_sampling_correction", False):
        return
    from parallel_r1.errors import ConfigError

    raise ConfigError("a deliberate layout mismatch under TRL's vLLM importance-sampling "
                      "correction would be reweighted away; set "
                      "vllm_importance_sampling_correction=False or sample with the built-in "
                      "engine", field="sampled_layout")


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
    num_iterations: int = 1  # policy updates per generation (GRPO's mu); > 1: the clip binds
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
    activation_checkpointing: bool = False  # recompute activations in backward: less memory


def grpo_args(output_dir: str | Path, hp: GRPOHyper, **extra: Any) -> GRPOConfig:
    """The GRPOConfig for our rollout function (generation is ours; TRL sees token ids).

    Args:
        extra: more GRPOConfig fields, e.g. report_to=["tensorboard"], run_name="demo/rl".
    """
    fields = dict(
        output_dir=str(output_dir), learning_rate=hp.learning_rate, adam_beta1=hp.adam_beta1,
        adam_beta2=hp.adam_beta2, weight_decay=hp.weight_decay,
        lr_scheduler_type=hp.lr_scheduler_type, warmup_steps=hp.warmup_ratio,
        max_grad_norm=hp.max_grad_norm, per_device_train_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        num_generations=hp.num_generations, steps_per_generation=hp.steps_per_generation,
        num_iterations=hp.num_iterations,
        max_steps=hp.max_steps, loss_type=hp.loss_type, epsilon=hp.epsilon,
        epsilon_high=hp.epsilon_high, beta=hp.beta,
        scale_rewards="group" if hp.advantage == "grpo" else "none",
        mask_truncated_completions=hp.mask_truncated_completions, temperature=hp.temperature,
        max_completion_length=hp.max_completion_length, save_steps=hp.save_steps,
        save_strategy="steps", logging_steps=hp.logging_steps, seed=hp.seed, data_seed=hp.seed,
        bf16=hp.bf16, dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(), ddp_find_unused_parameters=False, report_to=[],
        disable_tqdm=True, optim="adamw_torch", remove_unused_columns=False,
        **checkpointing_args(GRPOConfig, hp.activation_checkpointing))
    return GRPOConfig(**(fields | extra))


def build_grpo_trainer(model: Any, tokenizer: Any, prompts: Sequence[str], rollouts: EngineRollouts,
                       *, output_dir: str | Path, hp: GRPOHyper, layout: str = "structured",
                       sampled_layout: str | None = None, check_logprobs: bool = True,
                       logprob_check_every: int = 1, callbacks: list | None = None,
                       card_meta: dict[str, Any] | None = None, **extra_args: Any
                       ) -> ParallelGRPOTrainer:
    """A ready ParallelGRPOTrainer over `prompts` (rendered prompt texts, golds in `rollouts`).

    Args:
        layout, sampled_layout: the trainer's layout and, for a deliberate mismatch, the
            rollouts' (see ParallelGRPOTrainer).
        check_logprobs, logprob_check_every: the engine/trainer log-prob check, every N steps.
        callbacks: more TrainerCallbacks (tracker callbacks included).
        card_meta: provenance for the model card of each checkpoint (models.card).
        extra_args: more GRPOConfig fields (see `grpo_args`).

    Raises:
        ValueError: the advantage is not one TRL's GRPO implements ("grpo", "dr_grpo").
    """
    from datasets import Dataset

    from parallel_r1.train.distributed import announce
    from parallel_r1.train.progress import quiet_progress

    if hp.advantage not in ("grpo", "dr_grpo"):
        raise ValueError(f"advantage '{hp.advantage}' is not available in TRL's GRPOTrainer; "
                         "known: grpo, dr_grpo")
    callbacks = list(callbacks or []) + [JsonlMetrics(Path(output_dir) / "metrics.jsonl")]
    trainer = ParallelGRPOTrainer(
        model=model, reward_funcs=[reward_from_rollout], args=grpo_args(output_dir, hp, **extra_args),
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer, rollout_func=rollouts, callbacks=callbacks,
        layout=layout, sampled_layout=sampled_layout, check_logprobs=check_logprobs,
        logprob_check_every=logprob_check_every)
    trainer.card_meta = card_meta
    announce(trainer, "GRPO")
    return quiet_progress(trainer, "GRPO")
