"""Settings that TRL 1.16, transformers and torch's AdamW only refuse once a stage is running,
refused here instead: when a recipe is built (`stage_problem`, `seed_problem`) and, where the
machine, the process count, the data or the stage order decide, before any stage starts
(`check_limits`, from `train.preflight`), so `run --check` names the field, file and line.
Pure Python; transformers is imported only to ask whether a bfloat16 device is there.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.errors import ConfigError
from parallel_r1.train.distributed import world_size

# transformers.trainer_utils.SchedulerType (a test keeps the two equal)
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr",
              "cosine_warmup_with_min_lr", "warmup_stable_decay", "greedy")
# schedulers transformers builds only with settings a stage does not have
NEEDS_MORE = {
    "reduce_lr_on_plateau": "needs an evaluation strategy during training, which stages do not run",
    "greedy": "needs an evaluation strategy during training, which stages do not run",
    "cosine_with_min_lr": "needs lr_scheduler_kwargs (min_lr or min_lr_rate), which a recipe "
                          "cannot set",
    "cosine_warmup_with_min_lr": "needs lr_scheduler_kwargs (min_lr or min_lr_rate), which a "
                                 "recipe cannot set",
    "warmup_stable_decay": "needs lr_scheduler_kwargs (num_decay_steps), which a recipe cannot set",
}


def stage_problem(kind: str, *, temperature: float, lr_scheduler_type: str, adam_beta1: float,
                  adam_beta2: float) -> tuple[str, str] | None:
    """(field, fix) of the first setting a training stage of `kind` could not run with, or None.

    temperature 0 in an rl stage: its G samples per prompt would be one greedy answer (no
    advantage to learn from) and TRL's log-prob kernel divides the logits by it.
    """
    if kind not in ("sft", "rl"):
        return None
    if kind == "rl" and temperature == 0:
        return ("temperature", "an rl stage needs temperature > 0 (1.0 in the paper): at 0 its G "
                "samples per prompt are one greedy answer, with nothing to compare, and TRL "
                "divides the logits by the temperature (ZeroDivisionError)")
    if lr_scheduler_type not in SCHEDULERS:
        usable = ", ".join(s for s in SCHEDULERS if s not in NEEDS_MORE)
        return ("lr_scheduler_type", f"unknown scheduler; known: {usable}")
    if lr_scheduler_type in NEEDS_MORE:
        usable = ", ".join(s for s in SCHEDULERS if s not in NEEDS_MORE)
        return ("lr_scheduler_type", f"{lr_scheduler_type} {NEEDS_MORE[lr_scheduler_type]}; "
                f"use one of {usable}")
    for name, value in (("adam_beta1", adam_beta1), ("adam_beta2", adam_beta2)):
        if not 0 <= value < 1:
            return (name, "must be in [0, 1) (torch's AdamW refuses it)")
    return None


def seed_problem(seed: int) -> str | None:
    """Why numpy (seeded by transformers' set_seed) would refuse the recipe seed, or None."""
    return None if 0 <= seed < 2 ** 32 else "must be in [0, 2**32 - 1] (numpy's seed range)"


def check_limits(recipe: Any, index: int, num_records: int | None) -> None:
    """The limits of stage `index` that depend on the machine, the process count, its data
    (`num_records`; None when not read) or the stages before it.

    Raises:
        ConfigError: naming the field, and the file and line that set it.
    """
    stage = recipe.stages[index]
    if stage.kind not in ("sft", "rl"):
        return
    if recipe.model.dtype == "bfloat16" and not _has_bf16():
        raise ConfigError("training in bfloat16 needs a bfloat16 GPU (transformers refuses it "
                          "on this machine); use float32", **recipe.locate("model.dtype"))
    if stage.kind == "rl":
        _check_rl(recipe, index, num_records)


def _check_rl(recipe: Any, index: int, num_records: int | None) -> None:
    stage, procs = recipe.stages[index], world_size()
    batch = stage.per_device_batch_size * stage.gradient_accumulation_steps * procs
    sizes = (f"per_device_batch_size {stage.per_device_batch_size} x gradient_accumulation_steps "
             f"{stage.gradient_accumulation_steps} x {procs} process(es) = {batch}")
    if batch % stage.num_generations:
        raise ConfigError(f"one generation ({sizes} completions) must hold whole groups of "
                          f"num_generations {stage.num_generations} (TRL refuses it)",
                          **recipe.locate(f"stages.{index}.per_device_batch_size"))
    local = batch // procs  # a group may span processes, but DAPO's filter drops whole groups
    if stage.dynamic_sampling and local % stage.num_generations:
        raise ConfigError(
            f"dynamic sampling drops whole groups, but {local} completions per process split "
            f"groups of {stage.num_generations} across processes; make per_device_batch_size x "
            "gradient_accumulation_steps a multiple of num_generations",
            **recipe.locate(f"stages.{index}.dynamic_sampling"))
    needed = batch // stage.num_generations
    if num_records is not None and num_records < needed:
        raise ConfigError(f"{num_records} prompt(s), but one generation takes {needed} distinct "
                          f"prompts ({sizes} completions / num_generations "
                          f"{stage.num_generations}): TRL would train 0 steps",
                          **recipe.locate(f"stages.{index}.data"))
    trained_before = any(s.kind in ("sft", "rl") for s in recipe.stages[:index])
    if stage.beta > 0 and recipe.model.name == "tiny" and not trained_before \
            and not recipe.model.lora_r:
        raise ConfigError("beta > 0 needs a reference model, which TRL loads from the model's "
                          "directory, and the tiny model is built in code; set beta: 0, "
                          "model.lora_r > 0, or train an sft stage first",
                          **recipe.locate(f"stages.{index}.beta"))


def _has_bf16() -> bool:
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

    return is_torch_bf16_gpu_available() or is_torch_xla_available()
