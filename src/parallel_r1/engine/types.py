"""What goes into the engine and what comes out: sampling settings, requests, rollouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from parallel_r1.errors import EngineError
from parallel_r1.structure import Layout

Mode = Literal["causal", "structured", "threads"]
MODES = ("causal", "structured", "threads")
Join = Literal["inject", "model"]


@dataclass(frozen=True)
class ParallelParams:
    """How blocks are run.

    `mode` is the layout (structure.py): causal: the tags are ordinary tokens ("Seen").
    structured: at `<Parallel>` the sample forks into paths that cannot see each other, decoded
    side by side and joined with overlapping positions ("Unseen"; the built-in engine only).
    threads: each path is its own request continuing the prefix, and the text after the block
    is read over the plain concatenation of the paths (any backend; fixed paths, join "inject").
    """

    mode: Mode = "structured"
    # Paths forked at each <Parallel>; None lets the model decide: 2 paths are forked, and after
    # the last path's </Path> the model may write <Path> again to add one more (up to max_paths).
    num_paths: int | None = 2
    max_paths: int = 8  # cap on paths per block, also when the model decides
    max_path_tokens: int = 256  # per path, <Path> and </Path> included; reaching it closes the path
    max_blocks: int = 4  # a <Parallel> sampled after this many blocks ends the response
    # After the paths: "inject" adds </Parallel>\n<Summary> itself (as the paper's runtime does);
    # "model" lets the model write the token after the last </Path> (forcing </Parallel> only if
    # it writes something else).
    join: Join = "inject"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EngineError(f"parallel.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.join not in ("inject", "model"):
            raise EngineError(f"parallel.join must be 'inject' or 'model', not {self.join!r}")
        if self.max_paths < 2:
            raise EngineError(f"parallel.max_paths must be >= 2, got {self.max_paths}")
        if self.num_paths is not None and not 2 <= self.num_paths <= self.max_paths:
            raise EngineError(f"parallel.num_paths must be in [2, max_paths={self.max_paths}] "
                              f"(or None to let the model decide), got {self.num_paths}")
        if self.max_path_tokens < 2:
            raise EngineError("parallel.max_path_tokens must be >= 2 (<Path> and </Path>), "
                              f"got {self.max_path_tokens}")
        if self.max_blocks < 0:
            raise EngineError(f"parallel.max_blocks must be >= 0, got {self.max_blocks}")
        if self.mode == "threads" and (self.num_paths is None or self.join != "inject"):
            raise EngineError("parallel.mode 'threads' runs a fixed number of paths joined by "
                              "the engine: set num_paths and join='inject' (letting the model "
                              "decide needs the structured mode)")


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling settings, in the shape of vLLM's.

    temperature 0 means greedy. Log-probs are always those of the sampled token under
    softmax(logits / temperature) (softmax(logits) when greedy), before top-k/top-p/min-p
    filtering: the quantity a trainer recomputes.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k
    min_p: float = 0.0  # drop tokens less likely than min_p x the likeliest (0 = off)
    max_tokens: int = 256  # hard cap on response tokens (all paths included); never exceeded
    n: int = 1
    seed: int | None = None  # sample i of a request uses seed + i; None draws one (recorded)
    stop_token_ids: tuple[int, ...] = ()  # besides the model's end-of-sequence tokens
    ignore_eos: bool = False  # do not stop at the model's end-of-sequence tokens (vLLM's)
    parallel: ParallelParams = field(default_factory=ParallelParams)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise EngineError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise EngineError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise EngineError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 <= self.min_p <= 1:
            raise EngineError(f"min_p must be in [0, 1], got {self.min_p}")
        if self.temperature == 0 and (self.top_p < 1 or self.top_k > 0 or self.min_p > 0):
            raise EngineError("temperature=0 is greedy decoding, which ignores top_p, top_k and "
                              "min_p; set temperature > 0 or leave top_p=1, top_k=0, min_p=0")
        if self.max_tokens < 1:
            raise EngineError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.n < 1:
            raise EngineError(f"n must be >= 1, got {self.n}")


@dataclass
class Request:
    """One prompt to sample `params.n` completions for."""

    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    seeds: list[int] | None = None  # explicit per-sample seeds (len n), else derived from params


@dataclass
class Rollout:
    """One finished sample. Lists over completion tokens are [T]."""

    request_id: str
    index: int  # sample index within its request
    seed: int
    prompt_ids: list[int]
    completion_ids: list[int]  # in sequence order: paths in creation order, joined as ids
    logprobs: list[float]  # of every completion token; NaN for an injected one the backend
    # could not score (only on backends without the "score" capability; never trained on)
    loss_mask: list[int]  # 1 = sampled by the model, 0 = injected by the engine
    finish_reason: str  # "stop" | "length" | "max_blocks" | "error"
    layout: Layout  # structure of prompt + completion (start = len(prompt_ids))
    text: str  # completion decoded with the tags
    num_blocks: int
    critical_path_length: int  # tokens on the longest path through the completion
    error: str | None = None  # why the backend failed it (finish_reason "error")

    @property
    def num_tokens(self) -> int:
        return len(self.completion_ids)
