"""The threads layout on the built-in engine: sampling = the packed training pass (float64, all
tokens), = each context run alone; the structured mask on the same rollouts is far off."""

import copy

import pytest
import torch

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.structure import batch_packed


def packed_logprobs(model, tags, rollout, layout="threads", temperature=1.0):
    """Log-probs of the completion tokens from one forward over the packed sequence [T_c]."""
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids])  # [1, T]
    batch = batch_packed(ids, torch.ones_like(ids), tags, len(rollout.prompt_ids), layout=layout,
                         dtype=model.dtype)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                       attention_mask=batch.attention_mask).logits[0]  # [T', V]
    logp = (logits.to(torch.float64) / temperature).log_softmax(-1)
    cols = batch.predictor[0, len(rollout.prompt_ids):]  # [T_c]
    return logp[cols].gather(-1, torch.tensor(rollout.completion_ids)[:, None])[:, 0]


def context_logprobs(model, rollout):
    """The same, from plain forwards over each context the sampler saw: the whole plain sequence
    for main text and first paths, prefix + the path alone for every later path."""
    ids = rollout.prompt_ids + rollout.completion_ids
    start, lay = len(rollout.prompt_ids), rollout.layout
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].to(torch.float64).log_softmax(-1)
    out = logp[start - 1:-1].gather(-1, torch.tensor(rollout.completion_ids)[:, None])[:, 0]
    groups = {}
    for i in range(start, len(ids)):
        if lay.path_id[i] >= 1:
            groups.setdefault((lay.block_id[i], lay.path_id[i]), []).append(i)
    for (b, _), members in groups.items():
        q = lay.block_id.index(b)  # the block's <Parallel>
        alone = ids[:q + 1] + [ids[i] for i in members]
        with torch.no_grad():
            lp = model(input_ids=torch.tensor([alone])).logits[0].to(torch.float64).log_softmax(-1)
        for j, i in enumerate(members):
            out[i - start] = lp[q + j, ids[i]]
    return out


@pytest.fixture(scope="module")
def tagged64(tagged):
    model, tok, tags = tagged
    return copy.deepcopy(model).to(torch.float64), tok, tags


def threads(num_paths, **kw):
    return ParallelParams(mode="threads", num_paths=num_paths, **kw)


@pytest.mark.parametrize("num_paths", [2, 3, 4, 5, 6])
def test_threads_sampling_equals_the_packed_pass_in_float64(tagged64, prompts, num_paths):
    model, tok, tags = tagged64
    params = SamplingParams(max_tokens=140, n=3, seed=num_paths,
                            parallel=threads(num_paths, max_path_tokens=12))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    assert max(r.num_blocks for r in rollouts) >= 2  # several blocks per response
    capped = [r for r in rollouts if any(
        sum(1 for b, p in zip(r.layout.block_id, r.layout.path_id) if (b, p) == key) == 12
        for key in set(zip(r.layout.block_id, r.layout.path_id)) if key[1] >= 0)]
    assert capped, "no path reached its cap"
    worst = 0.0
    for r in rollouts:
        engine = torch.tensor(r.logprobs, dtype=torch.float64)
        assert torch.isfinite(engine).all()  # the built-in backend scores injected tokens too
        worst = max(worst, (packed_logprobs(model, tags, r) - engine).abs().max().item())
        assert (context_logprobs(model, r) - engine).abs().max().item() < 1e-9
    assert worst < 1e-9, worst


def test_truncation_inside_a_block_stays_exact(tagged64, prompts):
    model, tok, tags = tagged64
    seen = set()
    for max_tokens in (9, 17, 26, 40):
        params = SamplingParams(max_tokens=max_tokens, n=4, seed=max_tokens,
                                parallel=threads(3, max_path_tokens=30))
        for r in TorchEngine(model, tok).generate(prompts, params):
            assert len(r.completion_ids) <= max_tokens
            seen.add((r.finish_reason, r.completion_ids[-1] == tags.parallel_open))
            engine = torch.tensor(r.logprobs, dtype=torch.float64)
            assert (packed_logprobs(model, tags, r) - engine).abs().max().item() < 1e-9
    assert ("length", True) in seen  # no room for the paths: the response ends at <Parallel>


def test_structured_mask_on_threads_rollouts_is_far_off(tagged64, prompts):
    """The negative control: what the original code does (train what stock engines sampled with
    the structured mask) disagrees with the sampler by a wide margin."""
    model, tok, tags = tagged64
    params = SamplingParams(max_tokens=120, n=3, seed=1, parallel=threads(3, max_path_tokens=20))
    rollouts = [r for r in TorchEngine(model, tok).generate(prompts, params) if r.num_blocks]
    gaps = [(packed_logprobs(model, tags, r, "structured") - torch.tensor(
        r.logprobs, dtype=torch.float64)).abs().max().item() for r in rollouts]
    assert min(gaps) > 0.05, gaps  # 10^7 times the tolerance of the exact pass


def test_greedy_threads_paths_equal_each_context_decoded_alone(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(temperature=0, max_tokens=80, parallel=threads(2, max_path_tokens=40))
    rollouts = [r for r in TorchEngine(model, tok).generate(prompts, params) if r.num_blocks]
    assert rollouts, "greedy decoding opened no block"
    r = rollouts[0]
    ids = r.prompt_ids + r.completion_ids
    q = r.layout.block_id.index(0)
    for k in range(2):
        path = [i for i in range(len(ids)) if (r.layout.block_id[i], r.layout.path_id[i]) == (0, k)]
        ctx = ids[:q + 1] + [tags.path_open]
        while ctx[-1] != tags.path_close and len(ctx) - q - 1 < len(path):
            with torch.no_grad():
                ctx.append(int(model(input_ids=torch.tensor([ctx])).logits[0, -1].argmax()))
        alone = ctx[q + 1:]
        if alone[-1] != tags.path_close:  # the engine closed it at its limit
            alone = alone[:-1] + [tags.path_close]
        assert [ids[i] for i in path] == alone
