"""Isolation, greedy paths, seeds, limits and bad input of the torch engine."""

import pytest
import torch
from test_exactness import teacher_forced_logprobs

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, Request, SamplingParams
from parallel_r1.errors import EngineError
from parallel_r1.models.tiny import build_tiny, build_tokenizer


def spans(rollout, block=0):
    """Completion indices of each path of one block."""
    start = len(rollout.prompt_ids)
    out = {}
    for i, (b, p) in enumerate(zip(rollout.layout.block_id, rollout.layout.path_id)):
        if b == block and p >= 0:
            out.setdefault(p, []).append(i - start)
    return [out[k] for k in sorted(out)]


def with_blocks(model, tok, prompts, **kw):
    params = SamplingParams(max_tokens=100, n=4, seed=11,
                            parallel=ParallelParams(max_path_tokens=25, **kw))
    return [r for r in TorchEngine(model, tok).generate(prompts, params) if r.num_blocks >= 1]


def test_changing_one_path_never_changes_a_sibling(tagged, prompts):
    model, tok, tags = tagged
    rollout = with_blocks(model, tok, prompts, num_paths=3)[0]
    paths = spans(rollout)
    base = teacher_forced_logprobs(model, tags, rollout)
    edited = list(rollout.completion_ids)
    for i in paths[1][1:-1]:  # rewrite the inside of path 1 (keep its tags)
        edited[i] = (edited[i] + 17) % 500
    rollout.completion_ids = edited
    after = teacher_forced_logprobs(model, tags, rollout)
    for k in (0, 2):
        idx = torch.tensor(paths[k][1:])  # the opener's log-prob depends on the previous path
        assert torch.equal(base[idx], after[idx]) or (base[idx] - after[idx]).abs().max() < 1e-6
    assert (base[torch.tensor(paths[1][2:])] - after[torch.tensor(paths[1][2:])]).abs().max() > 1e-3


def test_greedy_block_equals_each_path_decoded_alone(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(temperature=0, max_tokens=80,
                            parallel=ParallelParams(num_paths=2, max_path_tokens=40))
    eng = TorchEngine(model, tok)
    rollouts = [r for r in eng.generate(prompts, params) if r.num_blocks]
    assert rollouts, "greedy decoding opened no block"
    r = rollouts[0]
    first = spans(r)[0][0]
    prefix = r.prompt_ids + r.completion_ids[:first]  # through <Parallel>
    for path in spans(r):
        ids = prefix + [tags.path_open]
        while ids[-1] != tags.path_close and len(ids) - len(prefix) < len(path):
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
        alone = ids[len(prefix):]
        if alone[-1] != tags.path_close:  # the engine closed it at its limit
            alone = alone[:-1] + [tags.path_close]
        assert [r.completion_ids[i] for i in path] == alone


def test_a_sample_depends_on_its_seed_not_on_its_batch(tagged, prompts):
    model, tok, _ = tagged
    params = SamplingParams(max_tokens=60, seed=5, parallel=ParallelParams(num_paths=3))
    alone = TorchEngine(model, tok).generate(prompts[:1], params, seeds=[[42]])[0]
    batch = TorchEngine(model, tok).generate(prompts, params,
                                             seeds=[[42], [1], [2], [3]])[0]
    assert alone.completion_ids == batch.completion_ids
    assert max(abs(a - b) for a, b in zip(alone.logprobs, batch.logprobs)) < 1e-5


def test_seeds_differ_between_samples_and_prompts(tagged, prompts):
    model, tok, _ = tagged
    rollouts = TorchEngine(model, tok).generate(prompts, SamplingParams(max_tokens=4, n=3, seed=0))
    assert len({r.seed for r in rollouts}) == len(rollouts)


def test_loss_mask_marks_exactly_the_injected_tokens(tagged, prompts):
    model, tok, tags = tagged
    newline = tok.encode("\n", add_special_tokens=False)
    for r in with_blocks(model, tok, prompts, num_paths=2, join="inject"):
        for k in range(r.num_blocks):
            paths = spans(r, k)
            assert all(r.loss_mask[p[0]] == 0 for p in paths)  # every path opener is injected
            close = paths[-1][-1] + 1  # </Parallel>, then the injected newline and <Summary>
            assert r.completion_ids[close] == tags.parallel_close
            assert r.completion_ids[close + 1:close + 2 + len(newline)] == newline + [
                tags.summary_open]
            assert r.loss_mask[close:close + 2 + len(newline)] == [0] * (len(newline) + 2)
            inner = [i for p in paths for i in p[1:]]
            sampled = [r.loss_mask[i] for i in inner if r.completion_ids[i] != tags.path_close]
            assert all(m == 1 for m in sampled)  # path text is the model's


def test_hard_length_cap_is_never_overshot(tagged, prompts):
    model, tok, _ = tagged
    for max_tokens in (1, 5, 17, 40):
        for num_paths in (2, 4, None):
            params = SamplingParams(max_tokens=max_tokens, n=3, seed=max_tokens, parallel=(
                ParallelParams(num_paths=num_paths, join="model", max_path_tokens=30)))
            for r in TorchEngine(model, tok).generate(prompts, params):
                assert len(r.completion_ids) <= max_tokens
                assert r.finish_reason in ("stop", "length", "max_blocks")


def test_path_limit_closes_paths_with_an_injected_tag(tagged, prompts):
    model, tok, tags = tagged
    for r in with_blocks(model, tok, prompts, num_paths=2, max_blocks=4):
        for k in range(r.num_blocks):
            for path in spans(r, k):
                assert len(path) <= 25
                last = path[-1]
                assert r.completion_ids[last] == tags.path_close
                if len(path) == 25:
                    assert r.loss_mask[last] == 0


def test_max_blocks_ends_the_response(tagged, prompts):
    model, tok, tags = tagged
    params = SamplingParams(max_tokens=150, n=4, seed=2,
                            parallel=ParallelParams(max_blocks=1, max_path_tokens=10))
    rollouts = TorchEngine(model, tok).generate(prompts, params)
    ended = [r for r in rollouts if r.finish_reason == "max_blocks"]
    assert ended and all(r.num_blocks == 1 for r in rollouts if r.num_blocks)
    for r in ended:
        assert r.completion_ids[-1] == tags.parallel_open


def test_bad_input_is_a_clear_error(tagged):
    model, tok, _ = tagged
    eng = TorchEngine(model, tok)
    with pytest.raises(EngineError, match="exceeds the model's context"):
        eng.add_request(Request("r", [1] * 2040, SamplingParams(max_tokens=16)))
    with pytest.raises(EngineError, match="greedy"):
        SamplingParams(temperature=0, top_p=0.5)
    with pytest.raises(EngineError, match="num_paths"):
        ParallelParams(num_paths=9, max_paths=8)
    with pytest.raises(EngineError, match="top_p"):
        SamplingParams(top_p=0)
    plain, _ = build_tiny(seed=0)
    untagged = build_tokenizer(with_tags=False)
    eng = TorchEngine(plain, untagged)
    with pytest.raises(EngineError, match="single tokens"):
        eng.add_request(Request("r", [1, 2], SamplingParams()))
    causal = SamplingParams(max_tokens=3, parallel=ParallelParams(mode="causal"))
    assert len(eng.generate([[1, 2]], causal)[0].completion_ids) <= 3  # causal needs no tags


def test_streaming_steps_add_up_to_the_rollout(tagged, prompts):
    model, tok, _ = tagged
    eng = TorchEngine(model, tok)
    params = SamplingParams(max_tokens=60, n=2, seed=9, parallel=ParallelParams(max_path_tokens=20))
    eng.add_request(Request("a", prompts[0], params))
    got, final = {0: [], 1: []}, {}
    while eng.has_unfinished():
        for out in eng.step():
            got[out.index] += out.new_ids
            if out.rollout is not None:
                final[out.index] = out.rollout
    assert all(got[j] == final[j].completion_ids for j in (0, 1))
    assert not eng.rows and eng.cache.num_rows == 0  # every row freed


def test_abort_frees_rows(tagged, prompts):
    model, tok, _ = tagged
    eng = TorchEngine(model, tok)
    params = SamplingParams(max_tokens=200, n=3, seed=1, parallel=ParallelParams(num_paths=4))
    eng.add_request(Request("a", prompts[0], params))
    eng.add_request(Request("b", prompts[1], params))
    for _ in range(30):
        eng.step()
    assert {eng.request_of(a.seg.key) for a in eng.rows} == {"a", "b"}
    rows_before = eng.cache.num_rows
    eng.abort("a")
    assert {eng.request_of(a.seg.key) for a in eng.rows} == {"b"}
    assert eng.cache.num_rows < rows_before  # a's rows are freed at once
    while eng.has_unfinished():
        eng.step()
    assert eng.cache.num_rows == 0
