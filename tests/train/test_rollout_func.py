"""`parallel_r1.rollout_func` in a user's own TRL GRPOTrainer: what it returns, the prompts it
takes, and every trainer that would score its rollouts with other log-probs than the sampled
ones refused before any update (TRL's own trainer on structured or threads rollouts, a layout
that differs, a float32 model under bf16 autocast, another temperature)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import parallel_r1 as pr
from parallel_r1.errors import ConfigError
from parallel_r1.models.tiny import build_tiny


@pytest.fixture(scope="module")
def tiny():
    model, tok = build_tiny(0, num_layers=1, hidden=32)
    return model, tok, pr.TorchEngine(model, tok)


def _params(mode: str, temperature: float = 1.0):
    return pr.SamplingParams(temperature=temperature, max_tokens=12,
                             parallel=pr.ParallelParams(mode=mode, max_path_tokens=6))


def _trainer(tiny, tmp_path, rollouts, *, cls=None, **args):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tok, _ = tiny
    config = GRPOConfig(**({"output_dir": str(tmp_path), "per_device_train_batch_size": 2,
                            "num_generations": 2, "max_steps": 1, "max_completion_length": 12,
                            "bf16": False, "report_to": [], "save_strategy": "no"} | args))
    data = Dataset.from_list([{"prompt": "What is 1 + 2?"}, {"prompt": "What is 3 + 4?"}])
    return (cls or GRPOTrainer)(model=model, args=config, processing_class=tok,
                                reward_funcs=lambda completions, **_: [1.0] * len(completions),
                                train_dataset=data, rollout_func=rollouts)


def _stand_in(model, group=2):
    return SimpleNamespace(state=SimpleNamespace(global_step=0), num_generations=group,
                           model=model)


def test_it_returns_trl_fields_and_the_tagged_text(tiny):
    model, tok, engine = tiny
    out = pr.rollout_func(engine, _params("structured"))(["What is 1 + 2?"] * 2, _stand_in(model))
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask", "rollout_text",
            "num_blocks"} <= set(out)
    assert all(len(c) == len(lp) == len(m) for c, lp, m in
               zip(out["completion_ids"], out["logprobs"], out["env_mask"]))
    assert out["prompt_ids"][0] == pr.apply_template(tok, "What is 1 + 2?")
    assert out["completion_ids"][0] != out["completion_ids"][1]  # the group's samples differ
    assert out["rollout_text"][0] == tok.decode(out["completion_ids"][0][:-1]) or \
        out["rollout_text"][0] == tok.decode(out["completion_ids"][0])


def test_chat_prompts_are_templated_whole(tiny):
    model, tok, engine = tiny
    chat = [{"role": "system", "content": "Think in parallel."},
            {"role": "user", "content": "What is 1 + 2?"}]
    out = pr.rollout_func(engine, _params("causal"))([chat, chat], _stand_in(model))
    assert out["prompt_ids"][0] == pr.apply_template(tok, chat)  # the system turn kept


@pytest.mark.parametrize("prompt, given", [(None, "None"), ([1, 2, 3], "list of int"),
                                            ("", "empty string"), ({"prompt": "x"}, "a dict")])
def test_a_prompt_that_is_not_text_or_messages_is_refused(tiny, prompt, given):
    model, _, engine = tiny
    with pytest.raises(ConfigError, match=f"prompt 1 of the batch is .*{given}"):
        pr.rollout_func(engine, _params("causal"))(["What is 1 + 2?", prompt], _stand_in(model))


@pytest.mark.parametrize("mode", ["structured", "threads"])
def test_trl_own_trainer_refuses_parallel_layouts_before_any_update(tiny, tmp_path, mode):
    model, _, engine = tiny
    trainer = _trainer(tiny, tmp_path, pr.rollout_func(engine, _params(mode)))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match=f"{mode} layout.*ParallelGRPOTrainer"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_the_parallel_trainer_takes_the_layout_of_the_rollouts(tiny, tmp_path):
    _, _, engine = tiny
    trainer = _trainer(tiny, tmp_path, pr.rollout_func(engine, _params("threads")),
                       cls=pr.ParallelGRPOTrainer)
    assert trainer.layout == "threads"
    with pytest.raises(ConfigError, match="layout='causal' but the rollout function samples the "
                                          "structured layout"):
        pr.ParallelGRPOTrainer(model=trainer.model, args=trainer.args, layout="causal",
                               processing_class=trainer.processing_class,
                               reward_funcs=trainer.reward_funcs, train_dataset=trainer.train_dataset,
                               rollout_func=pr.rollout_func(engine, _params("structured")))


def test_a_rollout_function_of_unknown_layout_needs_one(tiny, tmp_path):
    with pytest.raises(ConfigError, match="pass layout="):
        _trainer(tiny, tmp_path, lambda prompts, trainer: {}, cls=pr.ParallelGRPOTrainer)


def test_bf16_autocast_over_a_float32_model_is_refused(tiny, tmp_path):
    """TRL's GRPOConfig defaults to bf16=True: the engine crashed deep in its KV cache."""
    _, _, engine = tiny
    trainer = _trainer(tiny, tmp_path, pr.rollout_func(engine, _params("causal")), bf16=True,
                       use_cpu=True)
    with pytest.raises(ConfigError, match="bf16=True .* float32 model"):
        trainer.train()


def test_another_temperature_than_the_trainer_is_refused(tiny, tmp_path):
    _, _, engine = tiny
    trainer = _trainer(tiny, tmp_path, pr.rollout_func(engine, _params("causal", 0.7)),
                       temperature=1.0)
    with pytest.raises(ConfigError, match="temperature 0.7 .* 1.0"):
        trainer.train()
