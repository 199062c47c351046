"""Settings TRL 1.16 / transformers / torch take only to fail once a stage runs (issue 19 case 4)
are refused by `load` + `check_recipe` (what `run --check` and `run` do before any work), naming
the field, file and line; and each refusal is still needed: the library still fails on it."""

from __future__ import annotations

import pytest

from parallel_r1.errors import ConfigError

RECIPE = """name: limits
output_dir: {out}
seed: 0
model:
  name: tiny
  dtype: float32
stages:
  - kind: sft
    data: "synthetic:1:4:0"
    template: none
    max_steps: 1
  - kind: rl
    data: "synthetic:1:4:3"
    template: none
    per_device_batch_size: 4
    num_generations: 2
    max_steps: 1
    temperature: 1.0
"""

SIZES = "per_device_batch_size: 4\n    num_generations: 2"
# (text replaced, its replacement (on the line it names), field, words of the message)
CASES = {
    "temperature-0": ("temperature: 1.0", "temperature: 0", "stages.rl.temperature",
                      "needs temperature > 0"),
    "scheduler-unknown": ("temperature: 1.0", "lr_scheduler_type: cosine_annealing",
                          "stages.rl.lr_scheduler_type", "unknown scheduler"),
    "scheduler-min-lr": ("temperature: 1.0", "lr_scheduler_type: cosine_with_min_lr",
                         "stages.rl.lr_scheduler_type", "needs lr_scheduler_kwargs"),
    "scheduler-plateau": ("max_steps: 1\n  - kind: rl", "lr_scheduler_type: reduce_lr_on_plateau",
                          "stages.sft.lr_scheduler_type", "needs an evaluation strategy"),
    "adam-beta1": ("temperature: 1.0", "adam_beta1: 1.0", "stages.rl.adam_beta1", "[0, 1)"),
    "adam-beta2": ("max_steps: 1\n  - kind: rl", "adam_beta2: -0.5", "stages.sft.adam_beta2",
                   "[0, 1)"),
    "seed": ("seed: 0", "seed: -1", "seed", "numpy's seed range"),
    "generation-batch": (SIZES, "per_device_batch_size: 2\n    num_generations: 4",
                         "stages.rl.per_device_batch_size",
                         "whole groups of num_generations 4"),
    "fewer-prompts": ("data: \"synthetic:1:4:3\"", "data: \"synthetic:1:1:3\"", "stages.rl.data",
                      "TRL would train 0 steps"),
    "bfloat16": ("dtype: float32", "dtype: bfloat16", "model.dtype", "bfloat16 GPU"),
}


def _write(tmp_path, old: str, new: str, drop_sft: bool = False):
    text = RECIPE.format(out=tmp_path / "run")
    if drop_sft:
        text = text.replace('  - kind: sft\n    data: "synthetic:1:4:0"\n    template: none\n'
                            '    max_steps: 1\n', "")
    if "\n  - kind: rl" in old:  # a setting of the sft stage: a line after its max_steps
        text = text.replace(old, f"max_steps: 1\n    {new}\n  - kind: rl", 1)
    else:
        text = text.replace(old, new, 1)
    path = tmp_path / "r.yaml"
    path.write_text(text)
    first = new.splitlines()[0].strip()
    return path, text.splitlines().index(next(x for x in text.splitlines()
                                              if x.strip() == first)) + 1


def _refusal(path) -> ConfigError:
    from parallel_r1.train.preflight import check_recipe
    from parallel_r1.train.recipe import load

    with pytest.raises(ConfigError) as err:
        check_recipe(load(path))
    return err.value


@pytest.mark.parametrize("case", sorted(CASES))
def test_setting_the_trainer_cannot_take_is_refused_with_field_file_and_line(tmp_path, case):
    old, new, field, words = CASES[case]
    if case == "bfloat16":
        from transformers.utils import is_torch_bf16_gpu_available

        if is_torch_bf16_gpu_available():
            pytest.skip("this machine trains in bfloat16")
    path, line = _write(tmp_path, old, new)
    err = _refusal(path)
    assert (err.field, err.file, err.line) == (field, str(path), line), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}, field '{field}': ")
    assert "\n" not in str(err)


def test_beta_needs_a_model_with_a_directory(tmp_path):
    path, line = _write(tmp_path, "temperature: 1.0", "beta: 0.04", drop_sft=True)
    err = _refusal(path)
    assert (err.field, err.line) == ("stages.rl.beta", line) and "reference model" in str(err)
    from parallel_r1.train.preflight import check_recipe
    from parallel_r1.train.recipe import load

    check_recipe(load(path, ["model.lora_r=4"]))  # the adapter off is the reference
    path, _ = _write(tmp_path, "temperature: 1.0", "beta: 0.04")
    check_recipe(load(path))  # after an sft stage the model comes from its saved directory


def test_the_generation_batch_counts_accumulation_and_processes(tmp_path, monkeypatch):
    from parallel_r1.train.preflight import check_recipe
    from parallel_r1.train.recipe import load

    path, _ = _write(tmp_path, SIZES, "per_device_batch_size: 2\n    num_generations: 4")
    with pytest.raises(ConfigError, match="whole groups"):
        check_recipe(load(path))
    check_recipe(load(path, ["stages.rl.gradient_accumulation_steps=2"]))
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun --nproc_per_node 2
    check_recipe(load(path))


# ---- each refusal is still needed: the library still fails on the setting -----------------
def test_trl_still_divides_by_the_temperature():
    import torch
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction

    hidden, weight = torch.randn(3, 8), torch.randn(5, 8)  # [N, H], [V, H]
    ChunkedLogProbFunction.apply(hidden, weight, None, torch.tensor([0, 1, 2]), 1.0, 4)
    with pytest.raises(ZeroDivisionError):
        ChunkedLogProbFunction.apply(hidden, weight, None, torch.tensor([0, 1, 2]), 0.0, 4)


def test_schedulers_are_transformers_and_the_refused_ones_still_fail(tmp_path):
    import torch
    from transformers import get_scheduler
    from transformers.trainer_utils import SchedulerType

    from parallel_r1.train.trainer_limits import NEEDS_MORE, SCHEDULERS

    assert set(SCHEDULERS) == {s.value for s in SchedulerType}
    optimiser = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    for name in SCHEDULERS:
        if name in ("reduce_lr_on_plateau", "greedy"):  # TrainingArguments refuses them
            from trl import GRPOConfig

            with pytest.raises(ValueError, match="requires an eval strategy"):
                GRPOConfig(output_dir=str(tmp_path), lr_scheduler_type=name, report_to=[],
                           bf16=False)
            continue
        try:
            get_scheduler(name, optimiser, num_warmup_steps=0, num_training_steps=4)
        except (TypeError, ValueError):
            assert name in NEEDS_MORE, name
        else:
            assert name not in NEEDS_MORE, name


def test_adamw_numpy_and_grpo_config_still_refuse_them(tmp_path):
    import numpy as np
    import torch
    from trl import GRPOConfig

    with pytest.raises(ValueError, match="beta"):
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], betas=(1.0, 0.999))
    with pytest.raises(ValueError):
        np.random.seed(-1)
    with pytest.raises(ValueError, match="divisible by num_generations"):
        GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=4,
                   report_to=[], bf16=False)
