"""Invariant: log-probs recorded while sampling equal one teacher-forced pass (DESIGN.md)."""

import pytest
import torch

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.structure import batch_structure


def teacher_forced_logprobs(model, tags, rollout, structured=True):
    """Log-probs of the completion tokens from one forward over the finished sequence [T]."""
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids])  # [1, T]
    pos, mask = batch_structure(ids, torch.ones_like(ids), tags, len(rollout.prompt_ids),
                                structured=structured)
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=pos, attention_mask=mask).logits.float()
    start = len(rollout.prompt_ids)
    logp = logits[0, start - 1:-1].log_softmax(-1)  # [T_c, V]
    return logp.gather(-1, torch.tensor(rollout.completion_ids)[:, None])[:, 0]


def max_diff(model, tags, rollouts, structured=True):
    return max(
        (teacher_forced_logprobs(model, tags, r, structured) - torch.tensor(r.logprobs)).abs().max()
        .item() for r in rollouts)


@pytest.mark.parametrize("num_paths,join", [(2, "inject"), (3, "model"), (4, "inject"),
                                            (None, "model")])
def test_structured_logprobs_equal_teacher_forced(tagged, prompts, num_paths, join):
    model, tok, tags = tagged
    params = SamplingParams(max_tokens=120, n=3, seed=7, parallel=ParallelParams(
        num_paths=num_paths, join=join, max_path_tokens=30))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    # the batch really mixes threads in and out of blocks, with several blocks per response
    assert max(r.num_blocks for r in rollouts) >= 2
    assert min(r.num_blocks for r in rollouts) <= 1 or len({r.num_blocks for r in rollouts}) > 1
    assert max_diff(model, tags, rollouts) < 1e-4


def test_model_decided_fan_out_goes_beyond_two_paths(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(max_tokens=150, n=4, seed=15, parallel=ParallelParams(
        num_paths=None, join="model", max_paths=4, max_path_tokens=20))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    widths = [sum(1 for t in r.completion_ids if t == tags.path_open) for r in rollouts
              if r.num_blocks == 1]
    counts = {r.layout.path_id.count(k) > 0 for r in rollouts for k in (2, 3)}
    assert True in counts, f"no block with a third path (path widths {widths})"
    for r in rollouts:
        per_block = {}
        for b, p in zip(r.layout.block_id, r.layout.path_id):
            if p >= 0:
                per_block.setdefault(b, set()).add(p)
        assert all(len(paths) <= 4 for paths in per_block.values())
    assert max_diff(model, tags, rollouts) < 1e-4


def test_causal_mode_equals_plain_causal_forward(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(max_tokens=80, n=2, seed=1, parallel=ParallelParams(mode="causal"))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    assert any(tags.parallel_open in r.completion_ids for r in rollouts)
    assert all(all(m == 1 for m in r.loss_mask) for r in rollouts)  # nothing injected
    assert max_diff(model, tags, rollouts, structured=False) < 1e-4


def test_top_k_top_p_and_temperature_keep_exact_logprobs(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(temperature=0.7, top_k=50, top_p=0.9, max_tokens=60, n=2, seed=5)
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    for r in rollouts:  # the recorded value is log softmax(logits / T), unfiltered
        ids = torch.tensor([r.prompt_ids + r.completion_ids])
        pos, mask = batch_structure(ids, torch.ones_like(ids), tags, len(r.prompt_ids))
        with torch.no_grad():
            logits = model(input_ids=ids, position_ids=pos, attention_mask=mask).logits.float()
        logp = (logits[0, len(r.prompt_ids) - 1:-1] / 0.7).log_softmax(-1)
        ref = logp.gather(-1, torch.tensor(r.completion_ids)[:, None])[:, 0]
        assert (ref - torch.tensor(r.logprobs)).abs().max() < 1e-4
