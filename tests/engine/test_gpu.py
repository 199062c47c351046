"""On a CUDA device: the built-in engine in bfloat16, and the vLLM backend's log-probs against the
trainer's (threads layout). Marked `gpu`; skipped without CUDA or vLLM."""

import pytest
import torch
from test_threads import packed_logprobs

from parallel_r1.engine.driver import Engine
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.format.tags import TagIds
from parallel_r1.models.tiny import bias_tags, build_tiny

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TEXTS = ["What is 2+3?", "Compute 17 + 25", "x y z"]


def tagged_model():
    model, tok = build_tiny(seed=0)
    bias_tags(model, tok, parallel_open=4.0, path_close=4.0)
    return model, tok, TagIds.from_tokenizer(tok)


@pytest.mark.parametrize("mode", ["structured", "threads"])
def test_bf16_on_cuda_stays_close_to_the_trainer(mode):
    model, tok, tags = tagged_model()
    model = model.to("cuda", torch.bfloat16)
    params = SamplingParams(max_tokens=120, n=4, seed=3,
                            parallel=ParallelParams(mode=mode, max_path_tokens=20))
    rollouts = TorchEngine(model, tok, kv_budget_gb=0.01).generate(
        [tok.encode(t) for t in TEXTS], params)
    assert sum(r.num_blocks for r in rollouts) >= 3
    cpu = model.to("cpu")
    delta = torch.cat([(packed_logprobs(cpu, tags, r, mode) - torch.tensor(
        r.logprobs, dtype=torch.float64)).abs() for r in rollouts])
    assert delta.max() < 5e-2, delta.max()


def test_vllm_backend_threads_logprobs_match_the_trainer(tmp_path):
    pytest.importorskip("vllm")
    from vllm import LLM

    from parallel_r1.engine.vllm_backend import VLLMBackend
    from parallel_r1.models.load import save

    model, tok, tags = tagged_model()
    save(model, tok, tmp_path / "m")
    llm = LLM(model=str(tmp_path / "m"), dtype="float32", seed=0,
              logprobs_mode="processed_logprobs", gpu_memory_utilization=0.2, max_model_len=1024)
    params = SamplingParams(max_tokens=100, n=3, seed=1,
                            parallel=ParallelParams(mode="threads", max_path_tokens=16))
    rollouts = Engine(VLLMBackend(llm), tok).generate([tok.encode(t) for t in TEXTS], params)
    assert sum(r.num_blocks for r in rollouts) >= 2
    for r in rollouts:
        ref = packed_logprobs(model, tags, r, "threads")
        sampled = torch.tensor(r.loss_mask, dtype=torch.bool)
        gap = (ref - torch.tensor(r.logprobs, dtype=torch.float64)).abs()[sampled].max()
        assert gap < 1e-3, gap
