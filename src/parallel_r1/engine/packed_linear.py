"""Linear layers on oneDNN-prepacked weights for the engine's forward on CPU (float32).

`nn.Linear` computes x @ W.T with W [N, K] in rows, through aten::mm (MKL on CPU). At decode
sizes (M = rows <= 32) that GEMM ran at about half the speed of oneDNN's matmul on weights
prepacked into its blocked layout, which vLLM's CPU build uses (issue 23:
bench/results/engine_vs_vllm_profile_*.md, aten::mm 158 ms per step against onednn_mm 80 ms on
the same work). So on CPU the engine packs every float32 linear weight once
(`torch.ops.mkldnn._reorder_linear_weight`) and runs its forward with each Linear's `forward`
swapped for oneDNN's (`torch.ops.mkldnn._linear_pointwise`; a single row keeps aten's GEMV,
faster there) for that call only: the model is untouched outside it, and the trainer reads and
updates its own weights. Packs are made on the first forward and dropped when a weight may
have changed: an in-place update bumps the tensor's version counter, a replaced tensor has new
storage, and any torch optimizer's step drops every pack (a global step hook: the fused AdamW,
transformers' default `adamw_torch_fused`, updates in place without bumping version counters;
dropping also frees the copies while the trainer works). Writes through `.data` (peft's
`merge_adapter`) and in-place writes to inference tensors are invisible to all three: call
`TorchEngine.weights_changed()` after them (RL rollouts do before every generation).
Repacking SmolLM2 takes about 0.3 s. Only plain `nn.Linear` layers are packed (a subclass with
its own forward, a forward pre-hook, a parametrization or an instance `forward` set by a
wrapper such as accelerate's keeps its own), only x86-64 with oneDNN enabled (where it was
measured), only under no-grad (the engine's inference mode: a packed copy has no gradient), and
only plain 2-D CPU float32 weights (an FSDP2 shard runs the layer as it is).

Accuracy. Values are the same; the summation order differs. oneDNN sums each output along all
of K in one chain, so its rounding error is larger than MKL's small-M kernel, which splits K
over vector lanes. That matters most at the output head, whose error goes straight into the
log-probs: on SmolLM2 ([8, 576] x [576, 49152]) the head's max error against float64 is 5.5e-6
packed, 0.9e-6 on aten, and 1.9e-6 packed in `HEAD_SPLITS` = 4 slices of K summed after, for
the same speed as one pack. So the head is packed in slices. Engine vs trainer on SmolLM2
(bench/exactness_real.py, bench/results/engine_vs_vllm.md): see the figures there. Costs one
packed copy of the linear weights in memory. Other dtypes and devices run the model as it is.
"""

from __future__ import annotations

import platform
import weakref
from typing import Any

import torch
from torch.nn.utils import parametrize
from torch.optim.optimizer import register_optimizer_step_post_hook

HEAD_SPLITS = 4  # slices of K for the output head's pack (see the module docstring)
_live: weakref.WeakSet[PackedLinears] = weakref.WeakSet()
_hook: list = []


def _drop_packs(optimizer: Any, args: Any, kwargs: Any) -> None:
    for packed in list(_live):
        packed.invalidate()


def can_pack(model: Any) -> bool:
    """Whether `PackedLinears` changes anything for this model: float32 on an x86-64 CPU with
    oneDNN enabled."""
    p = next(model.parameters())
    return (p.device.type == "cpu" and p.dtype == torch.float32
            and platform.machine().lower() in ("x86_64", "amd64")
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def plain_linear(module: Any) -> bool:
    """An `nn.Linear` whose output is exactly x @ W.T + b of its current weight."""
    return (isinstance(module, torch.nn.Linear)
            and type(module).forward is torch.nn.Linear.forward
            and "forward" not in module.__dict__  # a wrapper's (accelerate's hooks)
            and not module._forward_pre_hooks and not parametrize.is_parametrized(module))


class PackedLinears:
    """Calls `model(**kwargs)` with its linear layers on prepacked weights; see the module doc."""

    def __init__(self, model: Any, rows_hint: int = 8):
        self.model, self.rows_hint = model, rows_hint
        self.entries: list[list] = []  # [module, version, data_ptr, packs, K slices]
        if can_pack(model):
            head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") \
                else None
            self.entries = [[m, -1, -1, None, HEAD_SPLITS if m is head else 1]
                            for m in model.modules() if plain_linear(m)]
            _live.add(self)
            if not _hook:
                _hook.append(register_optimizer_step_post_hook(_drop_packs))

    def __call__(self, **kwargs: Any) -> Any:
        if not self.entries or torch.is_grad_enabled():
            return self.model(**kwargs)
        self.refresh()
        mine = {}
        try:
            for module, _, _, packs, _ in self.entries:
                if packs is not None and "forward" not in module.__dict__:  # not a wrapper's
                    module.forward = mine[module] = _packed_forward(module, packs)
            return self.model(**kwargs)
        finally:
            for module, forward in mine.items():
                if module.__dict__.get("forward") is forward:
                    del module.forward  # back to the class's own

    def refresh(self) -> None:
        """Pack again every weight that may have changed since it was packed."""
        for entry in self.entries:
            w, splits = entry[0].weight, entry[4]
            plain = type(w.data) is torch.Tensor and w.dim() == 2 and w.numel() > 0 \
                and w.device.type == "cpu" and w.dtype == torch.float32
            if not plain:
                entry[1:4] = [-1, -1, None]
                continue
            version = -2 if w.is_inference() else w._version  # inference tensors have none
            if entry[3] is not None and version == entry[1] and w.data_ptr() == entry[2]:
                continue
            k = w.shape[1]
            bounds = [k * i // splits for i in range(splits + 1)]
            packs = [(a, b, torch.ops.mkldnn._reorder_linear_weight(
                w.detach()[:, a:b].contiguous(), self.rows_hint))
                for a, b in zip(bounds, bounds[1:]) if b > a]
            entry[1:4] = [version, w.data_ptr(), packs]

    def invalidate(self) -> None:
        """Drop every pack (made again at the next forward): after writes the checks cannot
        see (through `.data`), and after every optimizer step."""
        for entry in self.entries:
            entry[3] = None

    def memory_bytes(self) -> int:
        """Bytes of the packed copies held now (float32 values; oneDNN's padding not counted)."""
        return sum(e[0].weight.numel() * 4 for e in self.entries if e[3] is not None)


def _packed_forward(module: torch.nn.Linear, packs: list):
    weight, bias = module.weight, module.bias

    def forward(x: torch.Tensor) -> torch.Tensor:  # [..., K] -> [..., N]
        if x.numel() == x.shape[-1]:  # one row (a batch-1 decode): MKL's GEMV is faster
            return torch.nn.functional.linear(x, weight, bias)
        if len(packs) == 1:
            return torch.ops.mkldnn._linear_pointwise(x, packs[0][2], bias, "none", [], "")
        out = None
        for a, b, packed in packs:  # slices of K, summed in order
            part = torch.ops.mkldnn._linear_pointwise(x[..., a:b], packed, None, "none", [], "")
            out = part if out is None else out.add_(part)
        return out if bias is None else out.add_(bias)
    return forward
