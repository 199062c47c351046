"""vLLM in process as a backend (`vllm.LLM`): each step sends every queued segment as one batch.

Used for TRL's colocated vLLM in rl stages (`backend: vllm`) and for `eval --backend vllm`.
Token-id prompts (`TokensPrompt`), a seed and `logprobs=0` per segment; stop ids are returned
in the output ids, as vLLM does. Capabilities: none (no KV reuse across requests beyond vLLM's
own prefix caching, no structured join, NaN log-probs for injected tokens), so it runs the
causal and threads layouts. vLLM is imported here only; tests that need it are marked `gpu`.
The log-probs equal the trainer's only if the LLM reports processed log-probs
(`logprobs_mode="processed_logprobs"`, as TRL sets it) or the temperature is 1.
"""

from __future__ import annotations

import math
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
                                 top_p=s.top_p, top_k=s.top_k if s.top_k else -1,
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


def _logprob(step: dict[int, Any], token: int) -> float | None:
    entry = step.get(token) if step else None
    return None if entry is None else float(entry.logprob)


def _empty(seg: Segment) -> SegmentResult:
    return SegmentResult(seg.key, extension_logprobs=[math.nan] * len(seg.extension),
                         score=[math.nan] * len(seg.score_ids))
