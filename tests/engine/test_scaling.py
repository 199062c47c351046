"""What the built-in engine needs on a GPU, checked on CPU: low precision, a KV memory budget
that admits samples in waves, one read-back per step whatever the number of rows."""

import copy

import pytest
import torch
from test_threads import packed_logprobs

from parallel_r1.engine.torch_backend import slot_bytes
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.errors import EngineError


@pytest.mark.parametrize("dtype,bound", [(torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("mode", ["structured", "threads"])
def test_low_precision_sampling_stays_close_to_the_trainer(tagged, prompts, dtype, bound, mode):
    model, tok, tags = tagged
    low = copy.deepcopy(model).to(dtype)
    params = SamplingParams(max_tokens=100, n=3, seed=2,
                            parallel=ParallelParams(mode=mode, max_path_tokens=20))
    rollouts = TorchEngine(low, tok).generate(prompts, params)
    assert sum(r.num_blocks for r in rollouts) >= 5
    delta = torch.cat([(packed_logprobs(low, tags, r, mode) - torch.tensor(
        r.logprobs, dtype=torch.float64)).abs() for r in rollouts])
    assert torch.isfinite(delta).all() and delta.max() < bound, delta.max()


def test_kv_budget_admits_samples_in_waves_and_changes_no_sample(tagged, prompts):
    model, tok, _ = tagged
    params = SamplingParams(max_tokens=60, n=3, seed=4,
                            parallel=ParallelParams(mode="threads", max_path_tokens=15))
    free = TorchEngine(model, tok).generate(prompts, params)
    longest = max(map(len, prompts)) + 60 + 1
    budget = 7 * longest * slot_bytes(model)  # 7 rows: two samples of 3 rows at a time
    eng = TorchEngine(model, tok, kv_budget_gb=budget / 2**30)
    for i, p in enumerate(prompts):
        eng.add_request(_request(i, p, params))
    running, rows, done = 0, 0, {}
    while eng.has_unfinished():
        for out in eng.step():
            if out.rollout is not None:
                done[(out.request_id, out.index)] = out.rollout
        running = max(running, len(eng.samples))
        rows = max(rows, eng.cache.num_rows)
    assert running == 2 and rows <= 7  # never more than the budget's rows
    waved = [done[(f"gen-{i}", j)] for i in range(len(prompts)) for j in range(3)]
    assert sum(r.num_blocks for r in waved) >= 3
    for a, b in zip(waved, free):
        assert a.completion_ids == b.completion_ids
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-5
    with pytest.raises(EngineError, match="KV budget holds"):
        TorchEngine(model, tok, kv_budget_gb=budget / 4 / 2**30).add_request(
            _request(0, prompts[0], params))


def _request(i, prompt, params):
    from parallel_r1.engine.types import Request

    return Request(f"gen-{i}", list(prompt), params, [params.seed + i * params.n + j
                                                       for j in range(params.n)])


def test_one_read_back_per_step_whatever_the_rows(tagged, prompts, monkeypatch):
    model, tok, _ = tagged
    counts = []
    calls = {"n": 0}
    for name in ("tolist", "item", "cpu", "numpy", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **k):
            calls["n"] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for n in (1, 8):
        eng = TorchEngine(model, tok)
        params = SamplingParams(max_tokens=50, n=n, seed=1, top_p=0.9,
                                parallel=ParallelParams(mode="causal"))
        eng.add_request(_request(0, prompts[1], params))
        eng.step()  # the prefill
        calls["n"] = 0
        for _ in range(5):
            eng.backend.step()
        counts.append(calls["n"])
    assert counts[0] == counts[1] == 5, counts
