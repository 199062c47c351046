"""The block program: one sample as rounds of segment requests, the same on every backend.

    main text until <Parallel> or the end  ->  P path requests  ->  the continuation  -> ...

Pure bookkeeping over token ids (no model): `start` and `on_result` return the next segments
(`parallel_r1.engine.segments`) and the driver hands them to a backend. Per layout:
- causal: one main segment; the tags are ordinary tokens.
- threads (any backend): each path is a segment continuing the prefix through `<Parallel>` plus
  an injected `<Path>`; the continuation re-reads the prefix, the paths concatenated and the join
  tokens as one plain context, as a stock engine with prefix caching does.
- structured (a backend with "structured_join" and "score"): after its `</Path>` each path is
  fed once more (a score segment, which also gives the log-prob of the next path's `<Path>`, or
  of `</Parallel>` after the last path); the continuation joins the paths' KV side by side.

Which logits a token's log-prob comes from keeps sampling equal to training (structure.py): in
the structured layout a path opener is predicted at the previous path's `</Path>`, in threads at
`<Parallel>`. Injected tokens carry mask 0; their log-probs are NaN on a backend without "score".

Limits (each tested):
- max_tokens: the response never exceeds it. At a fork, each path gets
  min(max_path_tokens, (remaining - join tokens) // P) tokens; if that is under 2 the response
  ends with finish_reason "length" right after `<Parallel>`.
- max_path_tokens: a path that reaches it is closed with an injected `</Path>` (the draw at that
  position is discarded; its `</Path>` log-prob is read from the same distribution).
- EOS or a stop token drawn inside a path is replaced by an injected `</Path>`.
- max_paths: when the model decides (structured, join "model"), a further `<Path>` beyond it
  gets `</Parallel>` injected.
- max_blocks: a `<Parallel>` drawn after that many blocks ends the response ("max_blocks").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from parallel_r1.engine.segments import Segment, SegmentResult
from parallel_r1.engine.types import Request
from parallel_r1.format.tags import TagIds

NAN = math.nan
MAIN, PATH, SCORE, DECIDE = "main", "path", "score", "decide"


@dataclass(frozen=True)
class Rules:
    """What every program of one engine shares."""

    tags: TagIds
    stop_ids: frozenset[int]  # the model's end-of-sequence tokens
    newline_ids: tuple[int, ...]
    can_score: bool  # the backend gives log-probs of injected tokens


@dataclass
class PathState:
    index: int
    limit: int  # tokens allowed, <Path> and </Path> included
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    closed: bool = False  # its tokens are final
    tail: int | None = None  # key of the last segment holding it (the join continues it)


@dataclass
class BlockState:
    main_key: int  # the main segment that drew <Parallel>
    main_keep: int  # its drawn tokens
    paths: list[PathState] = field(default_factory=list)
    join: tuple[int, float, bool] | None = None  # (</Parallel>, log-prob, sampled)


def mix_seed(seed: int, a: int, b: int) -> int:
    """A segment's seed from its sample's seed and where it sits (block, path or main turn);
    below 2**62, so it travels unchanged to any server."""
    return (seed * 1_000_003 + a * 10_007 + b * 101 + 1) % 2**62


class SampleProgram:
    """One sample of a request, from its prompt to its finish reason."""

    def __init__(self, request: Request, index: int, seed: int, rules: Rules, keys: Iterator[int]):
        self.request, self.index, self.seed, self.rules = request, index, seed, rules
        self.params, self.par = request.params, request.params.parallel
        eos = frozenset() if self.params.ignore_eos else rules.stop_ids
        self.stops = eos | frozenset(self.params.stop_token_ids)
        self.completion: list[int] = []
        self.logprobs: list[float] = []
        self.mask: list[int] = []
        self.num_blocks = 0
        self.finish: str | None = None
        self.error: str | None = None
        self.current: int | None = None  # the running main segment (its draws stream out)
        self.active: set[int] = set()  # submitted, no result yet
        self.live: list[int] = []  # results a later segment may continue
        self.to_release: list[int] = []  # results the driver should release now
        self._keys, self._roles = keys, {}
        self._block: BlockState | None = None
        self._targets: list[tuple[int, int]] = []  # (extension index, completion index)
        self._turn = 0

    # ---- public ---------------------------------------------------------------------------------
    def start(self) -> list[Segment]:
        """The first segment: the main text after the prompt."""
        prompt = tuple(self.request.prompt_ids)
        return self._main(None, prompt)

    def on_result(self, res: SegmentResult) -> list[Segment]:
        """Take a finished segment; returns the segments to submit next (maybe none)."""
        self.active.discard(res.key)
        role, k = self._roles.pop(res.key)
        if res.finish == "error":
            self.error = res.error or "the backend failed"
            self.to_release.append(res.key)
            return self._finish("error")
        if self.finish is not None:  # finished while siblings ran
            self.to_release.append(res.key)
            return []
        handler = {MAIN: self._on_main, PATH: self._on_path, SCORE: self._on_score,
                   DECIDE: self._on_decide}[role]
        return handler(res, k)

    # ---- main text ------------------------------------------------------------------------------
    def _main(self, parent: tuple[int, int] | None, extension: tuple[int, ...],
              join: tuple[int, ...] = ()) -> list[Segment]:
        remaining = self.params.max_tokens - len(self.completion)
        if remaining <= 0 and not (self._targets and self.rules.can_score):
            return self._finish("length")
        stops = self.stops
        if self.par.mode != "causal":
            stops = stops | {self.rules.tags.parallel_open}
        tail = len(extension) - self._targets[0][0] if self._targets else 0
        # the first turn draws with the sample's own seed: a causal sample is then the same
        # on every backend that honours a request seed the way ours does
        seed = self.seed % 2**62 if self._turn == 0 else mix_seed(self.seed, 0, self._turn)
        seg = self._segment(MAIN, -1, extension, max(remaining, 0), stops, seed, parent=parent,
                            join=join, logprob_tail=tail)
        self._turn += 1
        self.current = seg.key
        return [seg]

    def _on_main(self, res: SegmentResult, _: int) -> list[Segment]:
        self.current = None
        for e, c in self._targets:
            self.logprobs[c] = _at(res.extension_logprobs, e)
        self._targets = []
        for tok, lp in zip(res.tokens, res.logprobs):
            self._add(tok, lp, 1)
        self.live.append(res.key)
        last = res.tokens[-1] if res.tokens else None
        if last is not None and last in self.stops:
            return self._finish("stop")
        if last == self.rules.tags.parallel_open and self.par.mode != "causal":
            return self._open_block(res)
        return self._finish("length")

    def _open_block(self, res: SegmentResult) -> list[Segment]:
        if self.num_blocks >= self.par.max_blocks:
            return self._finish("max_blocks")
        remaining = self.params.max_tokens - len(self.completion)
        if remaining <= 0:
            return self._finish("length")
        num = self.par.num_paths or 2
        limit = min(self.par.max_path_tokens, (remaining - self._join_len()) // num)
        if limit < 2:
            return self._finish("length")
        self._block = BlockState(res.key, len(res.tokens))
        return [self._path(k, limit, NAN, 0) for k in range(num)]

    # ---- paths ------------------------------------------------------------------------------------
    def _path(self, k: int, limit: int, opener_logp: float, sampled: int) -> Segment:
        block, tags = self._block, self.rules.tags
        path = PathState(k, limit, [tags.path_open], [opener_logp], [sampled])
        block.paths.append(path)
        return self._segment(PATH, k, (tags.path_open,), limit - 1,
                             self.stops | {tags.path_close},
                             mix_seed(self.seed, self.num_blocks + 1, k),
                             tail_ids=(tags.path_open,), parent=(block.main_key, block.main_keep),
                             watch=(tags.path_close,), logprob_tail=1)

    def _on_path(self, res: SegmentResult, k: int) -> list[Segment]:
        block, close = self._block, self.rules.tags.path_close
        path = block.paths[k]
        if not path.mask[0] and (self.par.mode == "threads" or k == 0):
            path.logprobs[0] = _at(res.extension_logprobs, -1)  # <Path> after <Parallel>
        n = len(res.tokens)
        replaced = n >= path.limit - 1 or res.tokens[-1] != close  # at the cap, or EOS
        keep = n - 1 if replaced else n
        path.tokens += res.tokens[:keep]
        path.logprobs += res.logprobs[:keep]
        path.mask += [1] * keep
        if replaced:
            path.tokens.append(close)
            path.logprobs.append(_at(res.watch[n - 1] if len(res.watch) >= n else [], 0))
            path.mask.append(0)
        path.closed = True
        self.live.append(res.key)
        if self.par.mode == "structured":
            return [self._after_path(path, res.key, keep, replaced)]
        path.tail = res.key
        return self._maybe_join()

    def _after_path(self, path: PathState, key: int, keep: int, replaced: bool) -> Segment:
        """Structured: feed the path's </Path> and read what comes after it in its context."""
        tags, block = self.rules.tags, self._block
        ext = (tags.path_close,) if replaced else ()
        where = {"tail_ids": tuple(path.tokens), "parent": (key, keep)}
        if path.index + 1 < len(block.paths):
            return self._segment(SCORE, path.index, ext, 0, frozenset(), 0,
                                 score=(tags.path_open,), **where)
        if self.par.join == "inject":
            return self._segment(SCORE, path.index, ext, 0, frozenset(), 0,
                                 score=(tags.parallel_close,), **where)
        return self._segment(DECIDE, path.index, ext, 1, frozenset(),
                             mix_seed(self.seed, self.num_blocks + 1, 1000 + path.index),
                             watch=(tags.parallel_close,), **where)

    def _on_score(self, res: SegmentResult, k: int) -> list[Segment]:
        block = self._block
        block.paths[k].tail = res.key
        self.live.append(res.key)
        if k + 1 < len(block.paths):
            block.paths[k + 1].logprobs[0] = _at(res.score, 0)
        else:
            block.join = (self.rules.tags.parallel_close, _at(res.score, 0), False)
        return self._maybe_join()

    def _on_decide(self, res: SegmentResult, k: int) -> list[Segment]:
        tags, block = self.rules.tags, self._block
        block.paths[k].tail = res.key
        self.live.append(res.key)
        tok, logp = res.tokens[0], res.logprobs[0]
        extra = self._extra_limit() if tok == tags.path_open else 0
        if extra:
            return [self._path(k + 1, extra, logp, 1)]
        if tok == tags.parallel_close:
            block.join = (tok, logp, True)
        else:
            block.join = (tags.parallel_close, _at(res.watch[0] if res.watch else [], 0), False)
        return self._maybe_join()

    def _extra_limit(self) -> int:
        """Token limit for one more path the model asked for (0: not allowed)."""
        block = self._block
        if self.par.num_paths is not None or len(block.paths) >= self.par.max_paths:
            return 0
        used = sum(len(p.tokens) if p.closed else p.limit for p in block.paths)
        free = self.params.max_tokens - len(self.completion) - used - self._join_len()
        return min(self.par.max_path_tokens, free) if free >= 2 else 0

    # ---- the join -----------------------------------------------------------------------------------
    def _maybe_join(self) -> list[Segment]:
        block, tags = self._block, self.rules.tags
        if not all(p.tail is not None for p in block.paths):
            return []
        if self.par.mode == "structured" and block.join is None:
            return []
        start = len(self.completion)
        for p in block.paths:
            for tok, lp, m in zip(p.tokens, p.logprobs, p.mask):
                self._add(tok, lp, m)
        if block.join is None:  # threads: </Parallel> is read over the concatenation
            block.join = (tags.parallel_close, NAN, False)
        tok, logp, sampled = block.join
        self._add(tok, logp, int(sampled))
        if self.par.join == "inject":
            for t in (*self.rules.newline_ids, tags.summary_open):
                self._add(t, NAN, 0)
        self.num_blocks += 1
        self._block = None
        added, size = tuple(self.completion[start:]), sum(map(_len, block.paths))
        if self.par.mode == "threads":  # a plain context: the paths and the join tokens again
            extension, offset, first = added, start, size
        else:  # structured: the paths' KV is joined; only the join tokens are fed
            extension, offset, first = added[size:], start + size, 1  # </Parallel> is known
        self._targets = [(e, offset + e) for e in range(first, len(extension))]
        join = tuple(p.tail for p in block.paths) if self.par.mode == "structured" else ()
        self.to_release += self.live
        self.live = []
        return self._main((block.main_key, block.main_keep), extension, join)

    def _join_len(self) -> int:
        return 1 + (len(self.rules.newline_ids) + 1 if self.par.join == "inject" else 0)

    # ---- helpers --------------------------------------------------------------------------------------
    def _segment(self, role: str, k: int, extension: tuple[int, ...], max_tokens: int,
                 stops: frozenset[int], seed: int, *, tail_ids: tuple[int, ...] = (),
                 parent: tuple[int, int] | None = None, join: tuple[int, ...] = (),
                 watch: tuple[int, ...] = (), score: tuple[int, ...] = (),
                 logprob_tail: int = 0) -> Segment:
        """A segment whose context is the prompt, the completion so far and `tail_ids`, of which
        `extension` is the end."""
        key = next(self._keys)
        self._roles[key] = (role, k)
        self.active.add(key)
        p = self.params
        context = (*self.request.prompt_ids, *self.completion, *tail_ids)
        return Segment(key, context, extension, max_tokens, stops, p.temperature, p.top_p,
                       p.top_k, seed, parent=parent, join=join, watch_ids=watch, score_ids=score,
                       logprob_tail=logprob_tail if self.rules.can_score else 0,
                       min_p=p.min_p)

    def _add(self, tok: int, logp: float, sampled: int) -> None:
        self.completion.append(tok)
        self.logprobs.append(float(logp))
        self.mask.append(int(sampled))

    def _finish(self, reason: str) -> list[Segment]:
        self.finish, self.current = reason, None
        self.to_release += self.live
        self.live = []
        return []


def _len(path: PathState) -> int:
    return len(path.tokens)


def _at(values: list[float], i: int) -> float:
    try:
        return float(values[i])
    except IndexError:
        return NAN
