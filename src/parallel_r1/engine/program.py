"""Per-sample state machine: main text -> open block -> P paths -> join -> summary -> main text.

Pure bookkeeping over token ids (no model): a `Thread` owns one cache row and is fed one token
per engine step; after each forward the engine calls `decide` with the row's next-token logits
(already turned into log-probs and a sampled id), and the thread either records the token and
asks to be fed it, or changes shape (fork into paths, close a path, join, finish).

Which logits a token's log-prob comes from is what keeps sampling equal to training: a path's
first `<Path>` is predicted at `<Parallel>` (the main row), the opener of path k+1 at path k's
`</Path>` (path k's row, which holds only the prefix and path k), and `</Parallel>` at the last
path's `</Path>` — exactly the tokens each of them attends to under the structured mask.

Limits (each tested):
- max_tokens: the response never exceeds it. At a fork, each path gets
  min(max_path_tokens, (remaining - join tokens) // P) tokens; if that is under 2 the response
  ends with finish_reason "length" right after `<Parallel>`.
- max_path_tokens: a path that reaches it is closed with an injected `</Path>`.
- EOS or a stop token sampled inside a path is replaced by an injected `</Path>`.
- max_paths: when the model decides, a further `<Path>` beyond it gets `</Parallel>` injected.
- max_blocks: a `<Parallel>` sampled after that many blocks ends the response
  (finish_reason "max_blocks"); the token is kept, so the block is visibly unclosed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from parallel_r1.engine.types import ParallelParams, Request
from parallel_r1.format.tags import TagIds

MAIN, AWAIT_FORK, PATH = "main", "await_fork", "path"


@dataclass
class Sample:
    """One completion being built."""

    request: Request
    index: int
    seed: int
    generator: torch.Generator
    completion: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    num_blocks: int = 0
    finish: str | None = None
    main: Thread | None = None  # the thread of its main text (parked while a block runs)

    @property
    def params(self):
        return self.request.params

    def add(self, tok: int, logp: float, sampled: bool) -> None:
        self.completion.append(tok)
        self.logprobs.append(logp)
        self.mask.append(int(sampled))


@dataclass
class Block:
    q: int  # position of <Parallel>
    prefix_len: int  # cache slots of the prefix (through <Parallel>)
    paths: list[Thread] = field(default_factory=list)
    join: tuple[int, float, bool] | None = None  # token after the last path (id, logp, sampled)


@dataclass
class Thread:
    """A cache row and what it is doing."""

    sample: Sample
    kind: str
    row: int
    pos: int  # position of the token fed next
    feed: int | None = None  # token to feed at the next forward (None = idle)
    forced: list[int] = field(default_factory=list)  # injected tokens to emit next
    block: Block | None = None
    generator: torch.Generator | None = None
    # paths only
    index: int = 0
    limit: int = 0  # tokens allowed in this path, <Path> and </Path> included
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    closed: bool = False
    done: bool = False


@dataclass
class Effects:
    """What a decision asks the engine to do with cache rows."""

    fork: list[Thread] = field(default_factory=list)  # new path threads (row = source row)
    join: Block | None = None
    finished: bool = False


class Program:
    """The rules, shared by all threads of one engine."""

    def __init__(self, tags: TagIds, stop_ids: set[int], newline_ids: list[int]):
        self.tags, self.stop_ids, self.newline_ids = tags, stop_ids, newline_ids

    def decide(self, th: Thread, logp: torch.Tensor, draw: Callable[[], int]) -> Effects:
        """Advance `th` by one token given logp [V] at its last fed token; `draw()` samples."""
        if th.kind == PATH:
            return self._path(th, logp, draw)
        if th.kind == AWAIT_FORK:
            return self._fork(th, logp)
        return self._main(th, logp, draw)

    # ---- main text ------------------------------------------------------------------------------
    def _main(self, th: Thread, logp: torch.Tensor, draw: Callable[[], int]) -> Effects:
        s, par = th.sample, th.sample.params.parallel
        if th.forced:
            tok, sampled = th.forced.pop(0), False
        else:
            if len(s.completion) >= s.params.max_tokens:
                return self._finish(s, "length")
            tok, sampled = draw(), True
        s.add(tok, float(logp[tok]), sampled)
        if sampled and tok in self.stop_ids:
            return self._finish(s, "stop")
        opens = par.mode == "structured" and sampled and tok == self.tags.parallel_open
        if opens and s.num_blocks >= par.max_blocks:
            return self._finish(s, "max_blocks")
        if len(s.completion) >= s.params.max_tokens and not th.forced:
            return self._finish(s, "length")
        th.feed, th.kind = tok, (AWAIT_FORK if opens else MAIN)
        return Effects()

    def _fork(self, th: Thread, logp: torch.Tensor) -> Effects:
        """`<Parallel>` was fed: split into paths, each opened with an injected `<Path>`."""
        s, par = th.sample, th.sample.params.parallel
        num = par.num_paths or 2
        remaining = s.params.max_tokens - len(s.completion)
        limit = min(par.max_path_tokens, (remaining - self._join_len(par)) // num)
        if limit < 2:
            return self._finish(s, "length")
        block = Block(q=th.pos - 1, prefix_len=-1)
        opener_logp = float(logp[self.tags.path_open])
        effects = Effects()
        for k in range(num):
            path = self._new_path(s, block, k, th.row, opener_logp if k == 0 else None, False)
            path.limit = limit
            effects.fork.append(path)
        return effects

    def _new_path(self, s: Sample, block: Block, k: int, row: int, opener_logp: float | None,
                  sampled: bool) -> Thread:
        gen = torch.Generator().manual_seed(_path_seed(s.seed, s.num_blocks, k))
        path = Thread(sample=s, kind=PATH, row=row, pos=block.q + 1, feed=self.tags.path_open,
                      block=block, generator=gen, index=k)
        path.tokens, path.logprobs, path.mask = [self.tags.path_open], [opener_logp], [int(sampled)]
        block.paths.append(path)
        return path

    # ---- paths ----------------------------------------------------------------------------------
    def _path(self, th: Thread, logp: torch.Tensor, draw: Callable[[], int]) -> Effects:
        if th.closed:  # its </Path> was just fed: logp is the distribution after this path
            return self._after_path(th, logp, draw)
        if len(th.tokens) >= th.limit - 1:
            tok, sampled = self.tags.path_close, False
        else:
            tok, sampled = draw(), True
            if tok in self.stop_ids:
                tok, sampled = self.tags.path_close, False
        th.tokens.append(tok)
        th.logprobs.append(float(logp[tok]))
        th.mask.append(int(sampled))
        th.closed = tok == self.tags.path_close
        th.feed = tok
        return Effects()

    def _after_path(self, th: Thread, logp: torch.Tensor, draw: Callable[[], int]) -> Effects:
        block, par = th.block, th.sample.params.parallel
        th.done, th.feed = True, None
        effects = Effects()
        if th.index + 1 < len(block.paths):  # the next path's opener follows this path
            block.paths[th.index + 1].logprobs[0] = float(logp[self.tags.path_open])
        elif par.join == "inject":
            block.join = (self.tags.parallel_close, float(logp[self.tags.parallel_close]), False)
        else:
            tok = draw()
            extra = self._extra_limit(th.sample, block) if tok == self.tags.path_open else 0
            if extra:
                nxt = self._new_path(th.sample, block, th.index + 1, th.row, float(logp[tok]), True)
                nxt.limit = extra
                effects.fork.append(nxt)
            elif tok == self.tags.parallel_close:
                block.join = (tok, float(logp[tok]), True)
            else:
                block.join = (self.tags.parallel_close, float(logp[self.tags.parallel_close]), False)
        if block.join is not None and all(p.done for p in block.paths):
            effects.join = block
        return effects

    def _extra_limit(self, s: Sample, block: Block) -> int:
        """Token limit for one more path the model asked for (0: not allowed)."""
        par = s.params.parallel
        if par.num_paths is not None or len(block.paths) >= par.max_paths:
            return 0
        used = sum(len(p.tokens) if p.done else p.limit for p in block.paths)
        free = s.params.max_tokens - len(s.completion) - used - self._join_len(par)
        return min(par.max_path_tokens, free) if free >= 2 else 0

    def join(self, main: Thread, block: Block) -> None:
        """Append all paths to the sample, in creation order; the main thread feeds the join."""
        s = main.sample
        for p in block.paths:
            for tok, lp, m in zip(p.tokens, p.logprobs, p.mask):
                s.add(tok, float(lp), bool(m))
        tok, lp, sampled = block.join
        s.add(tok, lp, sampled)
        s.num_blocks += 1
        main.kind, main.feed, main.block = MAIN, tok, None
        main.pos = block.q + max(len(p.tokens) for p in block.paths) + 1
        if s.params.parallel.join == "inject":
            main.forced = [*self.newline_ids, self.tags.summary_open]

    def _join_len(self, par: ParallelParams) -> int:
        return 1 + (len(self.newline_ids) + 1 if par.join == "inject" else 0)

    @staticmethod
    def _finish(s: Sample, reason: str) -> Effects:
        s.finish = reason
        return Effects(finished=True)


def _path_seed(seed: int, block: int, path: int) -> int:
    return (seed * 1_000_003 + block * 10_007 + path * 101 + 1) % (2**63 - 1)
