"""What the block program asks of a sampler backend, and what it gets back: token ids in, token
ids and log-probs out.

A `Segment` is one request: continue a context, append some injected tokens (`extension`), then
draw up to `max_tokens` tokens, stopping after a stop id. Any engine that takes token ids and
returns token ids with their log-probs can serve plain segments (a vLLM or SGLang server, our
own server, vLLM in-process); `context_ids` is the whole context as plain ids for them.

Backends with more capabilities serve more of the program (`Backend.capabilities`):
- "reuse": a segment continues its parent's KV cache (`parent`) instead of re-reading it;
- "structured_join": a segment continues a block's paths side by side (`join`), each path's
  keys at its own positions, as the structured layout needs (the built-in engine only);
- "score": log-probs of injected tokens (the last `logprob_tail` extension tokens), of
  `watch_ids` at every draw, and of `score_ids` after the context (`max_tokens=0` segments).
  Without it those values are NaN: they belong to injected tokens, never trained on.

Backend protocol (duck-typed; see torch_backend, openai_backend, vllm_backend):
    capabilities: frozenset[str]
    submit(segments) -> None          queue segments (they start at the next step)
    step() -> list[SegmentResult]     advance; return the segments that finished
    release(keys) -> None             the program will not continue these results any more
    cancel(keys) -> None              drop queued or running segments
    partial(key, start) -> (ids, logprobs)  drawn so far by a running segment (may be empty)
    max_rows(length) -> int | None    KV rows of `length` tokens the memory budget allows
    has_work() -> bool
"""

from __future__ import annotations

from dataclasses import dataclass, field

CAPABILITIES = ("reuse", "structured_join", "score")


@dataclass(frozen=True)
class Segment:
    """One request to a backend."""

    key: int  # unique among the driver's segments
    context_ids: tuple[int, ...]  # the whole context as plain ids, extension included
    extension: tuple[int, ...]  # the context's last tokens, appended by the program
    max_tokens: int  # draws at most (0: only score the context)
    stop_ids: frozenset[int]  # drawing stops after one of these (it is returned)
    temperature: float
    top_p: float
    top_k: int
    seed: int  # the noise of draw t is a function of (seed, t) alone
    parent: tuple[int, int] | None = None  # (segment key, its drawn tokens kept) continued here
    join: tuple[int, ...] = ()  # path segments continued side by side after the parent
    watch_ids: tuple[int, ...] = ()  # log-probs of these at every draw
    score_ids: tuple[int, ...] = ()  # log-probs of these after the context (with max_tokens=0)
    logprob_tail: int = 0  # log-probs wanted for this many trailing extension tokens
    min_p: float = 0.0  # drop tokens less likely than min_p x the likeliest (0 = off)


@dataclass
class SegmentResult:
    """A finished segment. Lists over drawn tokens are [n]."""

    key: int
    tokens: list[int] = field(default_factory=list)  # drawn; the last may be a stop id
    logprobs: list[float] = field(default_factory=list)  # of each drawn token
    watch: list[list[float]] = field(default_factory=list)  # [n][W] NaN without "score"
    extension_logprobs: list[float] = field(default_factory=list)  # [E] NaN where unknown
    score: list[float] = field(default_factory=list)  # [S]
    finish: str = "length"  # "stop" (a stop id was drawn) | "length" | "error"
    error: str | None = None
