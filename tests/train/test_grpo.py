"""GRPO through the real TRL trainer: exact structured log-probs, injected tokens out of the loss,
the reference losses equal TRL's, and a GRPO step moves every weight."""

from __future__ import annotations

import copy

import pytest
import torch

from parallel_r1.rl.losses import policy_loss


def _trainer(model, tok, tmp_path, *, loss_type="dapo", max_steps=1, lr=1e-4, count=4,
             malformed="score", dynamic=False, reward="accuracy_reward", mode="structured"):
    from parallel_r1.data.synthetic import generate
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.rewards import build_reward
    from parallel_r1.train.grpo import GRPOHyper, build_grpo_trainer
    from parallel_r1.train.rollout import EngineRollouts

    recs = generate(1, count, seed=5)
    prompts = [render_prompt("none", r.question) for r in recs]
    params = SamplingParams(max_tokens=64, parallel=ParallelParams(mode=mode, max_path_tokens=24))
    reward = build_reward(reward, grader="paper")
    rollouts = EngineRollouts(TorchEngine(model, tok), tok, params, reward.score_parts,
                              {p: r.answer for p, r in zip(prompts, recs)},
                              malformed=malformed, dynamic_sampling=dynamic)
    hp = GRPOHyper(learning_rate=lr, per_device_batch_size=8, num_generations=4,
                   max_steps=max_steps, max_completion_length=64, loss_type=loss_type,
                   save_steps=100)
    return build_grpo_trainer(model, tok, prompts, rollouts, output_dir=tmp_path, hp=hp,
                              layout=mode)


def _batch(trainer):
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop otherwise
    rows = [trainer.train_dataset[i] for i in range(2) for _ in range(4)]
    return trainer._generate_and_score_completions(rows)


def test_trainer_logprobs_equal_engine_logprobs(sft_tiny, tmp_path):
    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path)
    batch = _batch(trainer)
    injected = (batch["tool_mask"] == 0) & batch["completion_mask"].bool()
    assert injected.any(), "the rollouts should hold blocks with injected tags"
    gap = trainer.logprob_gap(batch).item()
    assert gap < 1e-4, gap
    trainer.layout = "causal"  # the causal pass over the same structured rollouts disagrees
    assert trainer.logprob_gap(batch).item() > 1e-3


def test_threads_rollouts_train_exactly_and_the_structured_mask_does_not(sft_tiny, tmp_path):
    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path, mode="threads")
    batch = _batch(trainer)
    injected = (batch["tool_mask"] == 0) & batch["completion_mask"].bool()
    assert injected.any(), "the rollouts should hold blocks with injected tags"
    assert trainer.logprob_gap(batch).item() < 1e-4  # every token, the injected ones too
    trainer._step = 0
    trainer.compute_loss(trainer.model, batch)  # the check reads the loss's own forward
    logged = trainer._metrics["train"]
    for stat in ("max", "mean", "p99"):
        values = logged[f"logprob/engine_trainer_abs_diff/{stat}"]
        assert values and 0 <= values[-1] < 1e-4
    assert logged["logprob/engine_trainer_abs_diff/p99"][-1] <= \
        logged["logprob/engine_trainer_abs_diff/max"][-1]
    trainer.layout = "structured"  # the original's mistake: the structured mask on threads
    assert trainer.logprob_gap(batch).item() > 1e-2


def _grads(trainer, batch):
    trainer.model.zero_grad()
    trainer._compute_loss(trainer.model, batch).backward()
    return [p.grad.clone() for p in trainer.model.parameters()]


@pytest.mark.parametrize("injected", [True, False])
def test_changing_an_injected_token_changes_no_gradient(sft_tiny, tmp_path, injected):
    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path)
    batch = _batch(trainer)
    batch["advantages"] = torch.linspace(-1, 1, batch["advantages"].numel())
    real = batch["completion_mask"].bool()
    want = 0 if injected else 1
    rows, cols = ((batch["tool_mask"] == want) & real).nonzero(as_tuple=True)
    row, col = rows[-1].item(), cols[-1].item()
    # End the row at that token, so that nothing after it conditions on it.
    batch["completion_mask"][row, col + 1:] = 0
    before = _grads(trainer, batch)
    changed = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
    token = changed["completion_ids"][row, col].item()
    changed["completion_ids"][row, col] = tok.convert_tokens_to_ids("7") if token != \
        tok.convert_tokens_to_ids("7") else tok.convert_tokens_to_ids("8")
    after = _grads(trainer, changed)
    same = all(torch.equal(a, b) for a, b in zip(before, after))
    assert same == injected


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_reference_loss_equals_trl_loss(sft_tiny, tmp_path, loss_type):
    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path, loss_type=loss_type)
    batch = _batch(trainer)
    batch["advantages"] = torch.linspace(-1, 1, batch["advantages"].numel())
    with torch.no_grad():
        trl_loss = trainer._compute_loss(trainer.model, batch)
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        logp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, batch["completion_ids"].size(1))
    loss_mask = batch["completion_mask"] * batch["tool_mask"]
    ours, _ = policy_loss(loss_type, logp, logp, batch["advantages"], loss_mask,
                          max_completion_length=trainer.max_completion_length)
    assert torch.allclose(ours, trl_loss, atol=1e-6), (ours, trl_loss)


def test_one_grpo_step_changes_every_parameter(sft_tiny, tmp_path):
    model, tok, _, _ = sft_tiny
    model = copy.deepcopy(model)
    before = copy.deepcopy(model.state_dict())
    trainer = _trainer(model, tok, tmp_path, lr=1e-3, count=8,
                       reward="accuracy_add_parallel_reward")  # varies with the blocks
    trainer.train()
    unchanged = [k for k, v in trainer.model.state_dict().items() if torch.equal(v, before[k])]
    assert not unchanged, unchanged
