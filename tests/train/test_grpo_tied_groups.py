"""Issue #11 case 8 through the real TRL trainer: a group of equal rewards gets exactly zero
advantages (TRL 1.16 alone gives +0.0012 for eight rewards of 1.2)."""

from __future__ import annotations

import torch


def _constant_reward(value: float):
    def score_parts(responses, golds, step):
        return [value] * len(responses), [{"acc": 1.0} for _ in responses]
    return score_parts


def _trainer(tmp_path, value: float):
    from parallel_r1.data.synthetic import generate
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.models.tiny import build_tiny
    from parallel_r1.train.grpo import GRPOHyper, build_grpo_trainer
    from parallel_r1.train.rollout import EngineRollouts

    model, tok = build_tiny(0, num_layers=2, hidden=64)
    recs = generate(1, 2, seed=5)
    prompts = [render_prompt("none", r.question) for r in recs]
    params = SamplingParams(max_tokens=8, parallel=ParallelParams(max_path_tokens=4))
    rollouts = EngineRollouts(TorchEngine(model, tok), tok, params, _constant_reward(value),
                              {p: r.answer for p, r in zip(prompts, recs)})
    hp = GRPOHyper(learning_rate=1e-4, per_device_batch_size=8, num_generations=8, max_steps=1,
                   max_completion_length=8, save_steps=100)
    trainer = build_grpo_trainer(model, tok, prompts, rollouts, output_dir=tmp_path, hp=hp,
                                 check_logprobs=False)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer, [trainer.train_dataset[0]] * 8


def test_equal_rewards_give_exactly_zero_advantages(tmp_path):
    from trl import GRPOTrainer

    trainer, rows = _trainer(tmp_path, 1.2)
    plain = GRPOTrainer._generate_and_score_completions(trainer, rows)  # TRL alone
    assert plain["advantages"].abs().max().item() > 1e-3  # the float32 residue we correct
    assert trainer._metrics["train"]["frac_reward_zero_std"][-1] == 0.0
    ours = trainer._generate_and_score_completions(rows)
    assert torch.equal(ours["advantages"], torch.zeros_like(ours["advantages"]))
    assert trainer._metrics["train"]["frac_reward_zero_std"][-1] == 1.0
