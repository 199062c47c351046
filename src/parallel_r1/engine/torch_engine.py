"""The built-in engine: the block program (driver.Engine) over the built-in backend.

`TorchEngine(model, tokenizer)` samples in the causal, threads and structured layouts with exact
log-probs on one device, in float32, float64, bfloat16 or float16 (the model's dtype).
`kv_budget_gb` bounds the KV cache: samples start only while their worst case fits, so a large
RL step runs in waves instead of all at once. `packed_linears` (on by default; None reads
the environment variable PARALLEL_R1_PACKED_LINEARS, 0 turns it off for every command): a
float32 model on an x86-64 CPU runs its linear layers on oneDNN-prepacked copies of the weights
(`packed_linear.py`: about 2x faster GEMMs at decode sizes, one more copy of those weights in
memory); other dtypes and devices are unaffected. On SmolLM2 (16 GSM8K prompts, ~4,500 float32
tokens) its engine-vs-trainer p99 per token is 2.4e-5 against 2.1e-5 with
`packed_linears=False`, and both are 2.2e-5 from a float64 trainer
(bench/results/exactness_smollm2-135m-instruct*.md).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from parallel_r1.engine.driver import Engine, StepOutput
from parallel_r1.engine.torch_backend import TorchBackend
from parallel_r1.errors import EngineError

__all__ = ["StepOutput", "TorchEngine"]


class TorchEngine(Engine):
    """Batched sampling with a Hugging Face causal LM; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, *, stop_ids: Sequence[int] | None = None,
                 max_context: int | None = None, kv_budget_gb: float | None = None,
                 packed_linears: bool | None = None):
        if packed_linears is None:
            value = os.environ.get("PARALLEL_R1_PACKED_LINEARS", "1").strip()
            if value not in ("0", "1"):
                raise EngineError(f"PARALLEL_R1_PACKED_LINEARS must be 0 or 1, got {value!r}")
            packed_linears = value == "1"
        budget = None if kv_budget_gb is None else int(kv_budget_gb * 2**30)
        backend = TorchBackend(model, kv_budget_bytes=budget, packed_linears=packed_linears)
        super().__init__(backend, tokenizer,
                         stop_ids=stop_ids, max_context=max_context, model=model)
        self.model = model
        self.device = self.backend.device

    def weights_changed(self) -> None:
        """Say that the model's weights were written where no check sees it (through `.data`,
        e.g. peft's `merge_adapter`, or in place on inference tensors): the prepacked copies are
        made again at the next forward. Optimizer steps, `load_state_dict` and replaced tensors
        are seen without it."""
        self.backend.weights_changed()

    @property
    def cache(self):
        """The backend's KV cache (rows, capacity, memory)."""
        return self.backend.cache
