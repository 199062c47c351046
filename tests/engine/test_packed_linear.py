"""engine/packed_linear.py: the engine's forward on oneDNN-prepacked linear weights (CPU, float32)
equals the model's own forward at float32 rounding, follows weight updates, and leaves the model
as it was."""

import copy

import pytest
import torch

from parallel_r1.engine.packed_linear import HEAD_SPLITS, PackedLinears, can_pack
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.models.tiny import build_tiny

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")


@pytest.fixture(scope="module")
def tiny():
    return build_tiny(seed=0, num_layers=2, hidden=64)


def logits(run, ids):
    with torch.inference_mode():
        return run(input_ids=ids).logits  # [B, T, V]


def test_packed_forward_equals_the_models_at_float32_rounding(tiny):
    model, _ = tiny
    ids = torch.randint(0, 500, (3, 7))
    packed = PackedLinears(model)
    assert len(packed.entries) == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    want = logits(model, ids)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = logits(packed, ids)
    ops = {e.key: e.count for e in prof.key_averages()}
    # oneDNN ran each one; the output head in HEAD_SPLITS slices of K
    assert ops.get("mkldnn::_linear_pointwise") == len(packed.entries) - 1 + HEAD_SPLITS
    assert "aten::mm" not in ops
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert all("forward" not in m.__dict__ for m in model.modules())  # the model is as it was
    assert packed.memory_bytes() == 4 * sum(m.weight.numel() for m in model.modules()
                                            if isinstance(m, torch.nn.Linear))


def test_the_head_in_slices_of_k_is_nearer_float64_than_one_pack():
    """The head's error goes straight into the log-probs: slices of K summed after keep it near
    aten's (module docstring); one pack sums all of K in one chain."""
    torch.manual_seed(0)
    head = torch.nn.Linear(576, 4096, bias=False)
    x = torch.randn(8, 576)
    want = x.double() @ head.weight.double().T

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def get_output_embeddings(self):
            return self.head

        def forward(self, x):
            return self.head(x)

    net = Net()
    sliced = PackedLinears(net)
    one = PackedLinears(net)
    one.entries[0][4] = 1
    with torch.inference_mode():
        err = {k: (run(x=x).double() - want).abs().max().item()
               for k, run in (("sliced", sliced), ("one", one))}
    assert len(sliced.entries[0][3]) == HEAD_SPLITS and len(one.entries[0][3]) == 1
    assert err["sliced"] < err["one"], err


def test_a_single_row_keeps_the_models_own_kernel(tiny):
    model, _ = tiny
    ids = torch.randint(0, 500, (1, 1))  # a batch-1 decode step
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = logits(PackedLinears(model), ids)
    assert "mkldnn::_linear_pointwise" not in {e.key for e in prof.key_averages()}
    assert torch.equal(got, logits(model, ids))


def test_packs_follow_in_place_updates_and_replaced_weights(tiny):
    model = copy.deepcopy(tiny[0])
    ids = torch.randint(0, 500, (2, 5))
    packed = PackedLinears(model)
    before = logits(packed, ids)
    with torch.no_grad():  # what an optimizer step does: in place
        model.model.layers[0].mlp.down_proj.weight.mul_(3.0)
    after = logits(packed, ids)
    assert not torch.allclose(after, before, atol=1e-3)
    assert torch.allclose(after, logits(model, ids), atol=1e-5, rtol=1e-5)
    head = model.model.layers[1].self_attn.o_proj
    head.weight = torch.nn.Parameter(torch.randn_like(head.weight))  # a new tensor
    assert torch.allclose(logits(packed, ids), logits(model, ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["fused", "foreach", "for-loop"])
def test_packs_follow_every_kind_of_optimizer_step(tiny, optimizer):
    """The fused AdamW (transformers' default on CPU too) updates the weights in place without
    bumping their version counters: the packs must follow it anyway."""
    model = copy.deepcopy(tiny[0])
    ids = torch.randint(0, 500, (2, 5))
    packed = PackedLinears(model)
    before = logits(packed, ids)
    kind = {"fused": {"fused": True}, "foreach": {"foreach": True},
            "for-loop": {"foreach": False}}[optimizer]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, **kind)
    model(input_ids=ids).logits.sum().backward()
    opt.step()
    want = logits(model, ids)
    assert not torch.allclose(want, before, atol=1e-3)
    assert torch.allclose(logits(packed, ids), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_run_the_model_as_it_is(tiny, dtype):
    model = copy.deepcopy(tiny[0]).to(dtype)
    assert not can_pack(model) and PackedLinears(model).entries == []
    ids = torch.randint(0, 500, (2, 5))
    assert torch.equal(logits(PackedLinears(model), ids), logits(model, ids))


def test_a_linear_with_a_wrapped_forward_is_left_alone(tiny):
    model = copy.deepcopy(tiny[0])
    wrapped = model.model.layers[0].mlp.up_proj
    wrapped.forward = lambda x, f=wrapped.forward: f(x)  # as accelerate's hooks do
    packed = PackedLinears(model)
    assert all(e[0] is not wrapped for e in packed.entries)
    logits(packed, torch.randint(0, 500, (1, 4)))
    assert "forward" in wrapped.__dict__  # still the wrapper, not removed


def test_engine_log_probs_stay_within_rounding_of_the_unpacked_engine(tiny):
    model, tok = tiny
    params = SamplingParams(max_tokens=24, n=2, seed=4, parallel=ParallelParams(
        num_paths=2, max_path_tokens=8))
    prompts = [tok.encode("What is 2+3?"), tok.encode("x")]
    got = TorchEngine(model, tok, packed_linears=True).generate(prompts, params)
    want = TorchEngine(model, tok, packed_linears=False).generate(prompts, params)
    for g, w in zip(got, want):
        assert g.completion_ids == w.completion_ids  # no draw flips on these seeds
        assert max(abs(a - b) for a, b in zip(g.logprobs, w.logprobs)) < 1e-5


def test_only_plain_linears_are_packed(tiny):
    """A subclass with its own forward (a router returning a tuple), a forward pre-hook (old
    weight_norm) or a parametrization computes something else than x @ W.T: left as it is."""

    class Router(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x).softmax(-1), x

    model = copy.deepcopy(tiny[0])
    mlp = model.model.layers[0].mlp
    mlp.gate_proj.__class__ = Router
    mlp.up_proj.register_forward_pre_hook(lambda module, args: None)
    torch.nn.utils.parametrize.register_parametrization(
        mlp.down_proj, "weight", torch.nn.Identity())
    packed = PackedLinears(model)
    kept = {e[0] for e in packed.entries}
    assert not kept & {mlp.gate_proj, mlp.up_proj, mlp.down_proj}
    assert model.model.layers[1].mlp.gate_proj in kept


def test_forwards_are_restored_after_an_error_and_a_later_wrapper_survives(tiny):
    model = copy.deepcopy(tiny[0])
    packed = PackedLinears(model)
    with pytest.raises((IndexError, RuntimeError)), torch.inference_mode():
        packed(input_ids=torch.full((2, 3), 10**6))  # ids outside the vocabulary
    assert all("forward" not in m.__dict__ for m in model.modules())
    late = model.model.layers[0].self_attn.q_proj
    late.forward = wrapper = lambda x, f=late.forward: f(x)  # set after the packs were chosen
    logits(packed, torch.randint(0, 500, (2, 3)))
    assert late.__dict__["forward"] is wrapper


def test_writes_through_data_need_weights_changed(tiny):
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    engine = TorchEngine(model, tok)
    ids = torch.randint(0, 500, (2, 5))
    run = engine.backend.run_model
    logits(run, ids)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.data.mul_(3.0)  # no version bump
    engine.weights_changed()
    assert run.memory_bytes() == 0
    assert torch.allclose(logits(run, ids), logits(model, ids), atol=1e-5, rtol=1e-5)


def test_an_optimizer_step_frees_the_packs_and_grad_mode_runs_the_model(tiny):
    model = copy.deepcopy(tiny[0])
    ids = torch.randint(0, 500, (2, 5))
    packed = PackedLinears(model)
    logits(packed, ids)
    assert packed.memory_bytes() > 0
    out = packed(input_ids=ids).logits  # grad mode: the model's own layers, with gradients
    out.sum().backward()
    assert model.model.layers[0].mlp.down_proj.weight.grad is not None
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    assert packed.memory_bytes() == 0


def test_the_switch_is_read_from_the_environment(tiny, monkeypatch):
    from parallel_r1.errors import EngineError

    model, tok = tiny
    monkeypatch.setenv("PARALLEL_R1_PACKED_LINEARS", "0")
    assert not isinstance(TorchEngine(model, tok).backend.run_model, PackedLinears)
    monkeypatch.setenv("PARALLEL_R1_PACKED_LINEARS", "yes")
    with pytest.raises(EngineError, match="PARALLEL_R1_PACKED_LINEARS must be 0 or 1"):
        TorchEngine(model, tok)
    monkeypatch.delenv("PARALLEL_R1_PACKED_LINEARS")
    assert isinstance(TorchEngine(model, tok).backend.run_model, PackedLinears)


def test_a_model_made_under_inference_mode_samples():
    """Inference tensors have no version counter: the packs fall back to storage checks."""
    with torch.inference_mode():
        model, tok = build_tiny(seed=0, num_layers=2, hidden=64)
    params = SamplingParams(max_tokens=8, seed=1, parallel=ParallelParams(mode="causal"))
    got = TorchEngine(model, tok).generate([tok.encode("hi")], params)[0]
    want = TorchEngine(model, tok, packed_linears=False).generate([tok.encode("hi")], params)[0]
    assert got.completion_ids == want.completion_ids
    assert max(abs(a - b) for a, b in zip(got.logprobs, want.logprobs)) < 1e-5
