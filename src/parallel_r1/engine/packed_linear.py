"""Linear layers on oneDNN-prepacked weights for the engine's forward on CPU (float32).

`nn.Linear` computes x @ W.T with W [N, K] in rows, through aten::mm (MKL on CPU). At decode
sizes (M = rows <= 32) that GEMM ran at about half the speed of oneDNN's matmul on weights
prepacked into its blocked layout, which vLLM's CPU build uses (issue 23:
bench/results/engine_vs_vllm_profile_*.md, aten::mm 158 ms per step against onednn_mm 80 ms on
the same work). So on CPU the engine packs every float32 linear weight once
(`torch.ops.mkldnn._reorder_linear_weight`) and runs its forward with each Linear's `forward`
swapped for oneDNN's (`torch.ops.mkldnn._linear_pointwise`; a single row keeps aten's GEMV,
faster there) for that call only: the model is untouched outside it, and the trainer reads and
updates its own weights. Before each forward a pack is renewed if its parameter may have
changed: an in-place update bumps the tensor's version counter, a replaced tensor has new
storage, and any torch optimizer's step counts (a global step hook), because the fused AdamW
(`fused=True`, transformers' default `adamw_torch_fused`) updates in place without bumping the
version counter. Repacking SmolLM2 takes about 0.3 s. A weight that is not a plain CPU float32
tensor (an FSDP2 shard) runs the layer as it is.

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

from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

HEAD_SPLITS = 4  # slices of K for the output head's pack (see the module docstring)
_optimizer_steps = [0]  # steps taken by any torch optimizer since the hook was registered
_hook: list = []


def _count_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    _optimizer_steps[0] += 1


def _watch_optimizers() -> None:
    """Count every torch optimizer's steps (once per process)."""
    if not _hook:
        _hook.append(register_optimizer_step_post_hook(_count_step))


def can_pack(model: Any) -> bool:
    """Whether `PackedLinears` changes anything for this model: float32 on CPU with oneDNN."""
    p = next(model.parameters())
    return (p.device.type == "cpu" and p.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


class PackedLinears:
    """Calls `model(**kwargs)` with its linear layers on prepacked weights; see the module doc."""

    def __init__(self, model: Any, rows_hint: int = 8):
        self.model, self.rows_hint = model, rows_hint
        self.entries: list[list] = []  # [module, version, data_ptr, packs, K slices]
        self.packed_at = -1  # optimizer steps counted when the packs were made
        if can_pack(model):
            _watch_optimizers()
            head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") \
                else None
            self.entries = [[m, -1, -1, None, HEAD_SPLITS if m is head else 1]
                            for m in model.modules()  # not one whose forward is wrapped
                            if isinstance(m, torch.nn.Linear) and "forward" not in m.__dict__]
            # already (accelerate's hooks set an instance attribute)

    def __call__(self, **kwargs: Any) -> Any:
        if not self.entries:
            return self.model(**kwargs)
        self.refresh()
        try:
            for module, _, _, packs, _ in self.entries:
                if packs is not None:
                    module.forward = _packed_forward(module, packs)
            return self.model(**kwargs)
        finally:
            for module, *_ in self.entries:
                module.__dict__.pop("forward", None)  # back to the class's own

    def refresh(self) -> None:
        """Pack again every weight that may have changed since it was packed."""
        stepped = self.packed_at != _optimizer_steps[0]
        self.packed_at = _optimizer_steps[0]
        for entry in self.entries:
            w, splits = entry[0].weight, entry[4]
            if not stepped and w._version == entry[1] and w.data_ptr() == entry[2] \
                    and entry[3] is not None:
                continue
            packs = None
            if type(w.data) is torch.Tensor and w.device.type == "cpu" \
                    and w.dtype == torch.float32:
                k = w.shape[1]
                bounds = [k * i // splits for i in range(splits + 1)]
                packs = [(a, b, torch.ops.mkldnn._reorder_linear_weight(
                    w.detach()[:, a:b].contiguous(), self.rows_hint))
                    for a, b in zip(bounds, bounds[1:]) if b > a]
            entry[1:4] = [w._version, w.data_ptr(), packs]

    def memory_bytes(self) -> int:
        """Bytes of the packed copies (the same count of float32 values as the weights)."""
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
