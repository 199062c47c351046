"""Linear layers on oneDNN-prepacked weights for the engine's forward on CPU (float32).

`nn.Linear` computes x @ W.T with W [N, K] in rows, through aten::mm (MKL on CPU). At decode
sizes (M = rows <= 32) that GEMM ran at about half the speed of oneDNN's matmul on weights
prepacked into its blocked layout, which vLLM's CPU build uses (issue 23:
bench/results/engine_vs_vllm_profile_*.md, aten::mm 158 ms per step against onednn_mm 80 ms on
the same work). So on CPU the engine packs every float32 linear weight once
(`torch.ops.mkldnn._reorder_linear_weight`) and runs its forward with each Linear's `forward`
swapped for oneDNN's (`torch.ops.mkldnn._linear_pointwise`; a single row keeps aten's GEMV,
faster there) for that call only: the model is untouched outside it, and the trainer reads and
updates its own weights. Before each forward a pack is renewed if its parameter changed (an in-place update bumps the tensor's version counter; a
replaced tensor has new storage). Values are the same; the GEMM's summation order differs, at
float32 rounding (bench/exactness_*.py measure engine vs trainer). Costs one packed copy of the
linear weights in memory. Other dtypes and devices run the model as it is.
"""

from __future__ import annotations

from typing import Any

import torch


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
        self.entries: list[list] = []  # [module, version, data_ptr, packed weight]
        if can_pack(model):
            self.entries = [[m, -1, -1, None] for m in model.modules()  # not one whose
                            if isinstance(m, torch.nn.Linear) and "forward" not in m.__dict__]
            # forward is wrapped already (accelerate's hooks set an instance attribute)

    def __call__(self, **kwargs: Any) -> Any:
        if not self.entries:
            return self.model(**kwargs)
        self.refresh()
        try:
            for module, *_, packed in self.entries:
                module.forward = _packed_forward(module, packed)
            return self.model(**kwargs)
        finally:
            for module, *_ in self.entries:
                del module.forward  # back to the class's own

    def refresh(self) -> None:
        """Pack again every weight that changed since it was packed."""
        for entry in self.entries:
            w = entry[0].weight
            if w._version != entry[1] or w.data_ptr() != entry[2] or entry[3] is None:
                packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), self.rows_hint)
                entry[1:] = [w._version, w.data_ptr(), packed]

    def memory_bytes(self) -> int:
        """Bytes of the packed copies (the same count of float32 values as the weights)."""
        return sum(e[0].weight.numel() * 4 for e in self.entries if e[3] is not None)


def _packed_forward(module: torch.nn.Linear, packed: torch.Tensor):
    weight, bias = module.weight, module.bias

    def forward(x: torch.Tensor) -> torch.Tensor:  # [..., K] -> [..., N]
        if x.numel() == x.shape[-1]:  # one row (a batch-1 decode): MKL's GEMV is faster
            return torch.nn.functional.linear(x, weight, bias)
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return forward
