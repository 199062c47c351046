"""The built-in backend: a Hugging Face causal LM over a forkable KV cache (`kv.RowCache`).

It serves every segment of the block program (`segments.py`) with all capabilities: a segment
continues its parent's cache row (taken over in place when nobody else extends it, else the
prefix is copied, never recomputed); the structured join appends the paths' cached slots to one
row; injected tokens are scored. Each step is at most two forwards: an extend over the rows that
have several tokens to feed (new prompts, injected tokens), left-padded so the log-probs wanted
sit in the last columns, then one decode over every running row ([R, 1] tokens). Running rows
are kept in front of the cache, parked rows (finished segments a later one may continue) behind.

Per step, one device->host copy of [R, 2 + W + S] numbers (ids, their log-probs, watched and
scored log-probs); sampling noise is made on the device (`sampler.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from parallel_r1.engine.kv import RowCache, slot_bytes
from parallel_r1.engine.packed_linear import PackedLinears
from parallel_r1.engine.sampler import sample
from parallel_r1.engine.segments import Segment, SegmentResult
from parallel_r1.errors import EngineError

NAN = math.nan


@dataclass(eq=False)
class _Row:
    index: int  # in the cache; changes when rows move
    owner: Any = None  # the running segment writing to it
    refs: int = 0  # held results, running segments and queued segments that need it


@dataclass(eq=False)
class _Held:
    """What a finished segment left in its row."""

    row: _Row
    ctx_len: int  # slots of its context
    pos0: int  # position of its first drawn token
    drawn: list[int]
    fed: int  # drawn tokens in the row after the context


@dataclass(eq=False)
class _Active:
    seg: Segment
    row: _Row
    pending: list[int]  # tokens to feed before the next draw
    pos: int  # position of pending[0]
    num_parent: int  # leading pending tokens that are the parent's, not the extension's
    ctx_len: int = 0  # slots once the context is fed
    pos0: int = 0
    leader: Any = None  # a root sharing its prompt prefill with this one
    result: SegmentResult = field(default_factory=lambda: SegmentResult(-1))


@dataclass(eq=False)
class _Queued:
    seg: Segment
    parent: _Held | None
    join: list[_Held]


class TorchBackend:
    """Segments on one device; see the module docstring."""

    capabilities = frozenset({"reuse", "structured_join", "score"})

    def __init__(self, model: Any, *, kv_budget_bytes: int | None = None,
                 packed_linears: bool = True):
        self.model = model
        # the forward; float32 on CPU: linear layers on prepacked weights (packed_linear.py)
        self.run_model = PackedLinears(model) if packed_linears else model
        self.device = next(model.parameters()).device
        self.cache = RowCache(self.device)
        self.set_kv_budget(kv_budget_bytes)
        self.rows: list[_Row] = []  # by cache index
        self.num_active = 0
        self.queue: list[_Queued] = []
        self.active: list[_Active] = []
        self.running: dict[int, _Active] = {}  # segment key -> its running state
        self.held: dict[int, _Held] = {}

    def set_kv_budget(self, kv_budget_bytes: int | None) -> None:
        """Bound the KV cache to `kv_budget_bytes` (None: unbounded) for samples not yet started."""
        self.kv_budget_bytes = kv_budget_bytes
        self.cache.max_slots = None if kv_budget_bytes is None else \
            kv_budget_bytes // slot_bytes(self.model)

    def prepare_weights(self) -> None:
        """Make the prepacked weights now (else at the first forward)."""
        if isinstance(self.run_model, PackedLinears):
            self.run_model.refresh()

    def weights_changed(self) -> None:
        """The model's weights were written where the engine cannot see it (through `.data`):
        drop the prepacked copies, made again at the next forward."""
        if isinstance(self.run_model, PackedLinears):
            self.run_model.invalidate()

    # ---- protocol -----------------------------------------------------------------------------
    def submit(self, segments: list[Segment]) -> None:
        """Queue segments; the results they continue are pinned until they start."""
        for seg in segments:
            parent = self.held[seg.parent[0]] if seg.parent else None
            join = [self.held[k] for k in seg.join]
            for h in ([parent] if parent else []) + join:
                h.row.refs += 1
            self.queue.append(_Queued(seg, parent, join))

    @torch.inference_mode()  # rows may move: the cache's buffers are inference tensors
    def release(self, keys: list[int]) -> None:
        for key in keys:
            held = self.held.pop(key, None)
            if held is not None:
                self._unref(held.row)

    @torch.inference_mode()
    def cancel(self, keys: list[int]) -> None:
        keys = set(keys)
        for q in [q for q in self.queue if q.seg.key in keys]:
            self.queue.remove(q)
            for h in ([q.parent] if q.parent else []) + q.join:
                self._unref(h.row)
        for act in [a for a in self.active if a.seg.key in keys]:
            self.active.remove(act)
            del self.running[act.seg.key]
            self._stop(act.row)
            self._unref(act.row)

    def has_work(self) -> bool:
        return bool(self.queue or self.active)

    def partial(self, key: int, start: int = 0) -> tuple[list[int], list[float]]:
        """Tokens a running segment has drawn so far (from index `start`), and their log-probs."""
        act = self.running.get(key)
        if act is None:
            return [], []
        return act.result.tokens[start:], act.result.logprobs[start:]

    def max_rows(self, length: int) -> int | None:
        """Rows of `length` tokens the KV budget holds (None: no budget)."""
        if self.kv_budget_bytes is None:
            return None
        return self.kv_budget_bytes // max(1, length * slot_bytes(self.model))

    @torch.inference_mode()  # no autograd bookkeeping on any op of the step
    def step(self) -> list[SegmentResult]:
        """Start queued segments, run the extend and decode forwards; return finished ones."""
        followers = self._admit()
        self._extend()
        for act in followers:
            n = len(act.seg.extension) - 1
            self.cache.copy_prefix(act.leader.row.index, act.row.index, n)
        return self._decode() if self.active else []

    # ---- admission --------------------------------------------------------------------------------
    def _admit(self) -> list[_Active]:
        leaders: dict[tuple[int, ...], _Active] = {}
        followers = []
        queue, self.queue = self.queue, []
        for q in queue:
            seg = q.seg
            if q.parent is None:  # a prompt; samples of one prompt share its prefill
                prompt = tuple(seg.extension)
                lead = leaders.get(prompt)
                if lead is None:
                    leaders[prompt] = self._start(seg, self._new_row(), list(prompt), 0, 0, 0)
                else:
                    n = len(prompt) - 1
                    act = self._start(seg, self._new_row(), [prompt[-1]], n, 0, n)
                    act.leader = lead
                    followers.append(act)
            elif q.join:
                self._start_join(q)
            else:
                self._start_child(q)
        return followers

    def _start(self, seg: Segment, row: _Row, pending: list[int], pos: int, num_parent: int,
               base: int | None = None) -> _Active:
        """Run `seg` on `row`, which holds `base` slots of its context before `pending`."""
        if not pending:
            raise EngineError(f"segment {seg.key} has no token to feed")
        act = _Active(seg, row, pending, pos, num_parent)
        base = self.cache.length(row.index) if base is None else base
        act.ctx_len, act.pos0 = base + len(pending), pos + len(pending)
        act.result = SegmentResult(seg.key, extension_logprobs=[NAN] * len(seg.extension))
        row.owner, row.refs = act, row.refs + 1
        self._activate(row)
        self.active.append(act)
        self.running[seg.key] = act
        return act

    def _start_child(self, q: _Queued) -> None:
        held, keep = q.parent, q.seg.parent[1]
        fed = min(held.fed, keep)
        base = held.ctx_len + fed
        unfed = held.drawn[fed:keep]
        row = self._row_from(held.row, base)
        self._start(q.seg, row, unfed + list(q.seg.extension), held.pos0 + fed, len(unfed))
        self._unref(held.row)

    def _start_join(self, q: _Queued) -> None:
        """Structured: the paths' slots side by side after the shared prefix."""
        prefix = q.parent.ctx_len + q.seg.parent[1]
        first = q.join[0]
        row = self._row_from(first.row, first.ctx_len + first.fed)
        for path in q.join[1:]:
            self.cache.append_slots(row.index, path.row.index, prefix, path.ctx_len + path.fed)
        pos = max(p.pos0 + p.fed for p in q.join)  # one past the furthest path token
        self._start(q.seg, row, list(q.seg.extension), pos, 0)
        for h in [q.parent, *q.join]:
            self._unref(h.row)

    def _row_from(self, row: _Row, length: int) -> _Row:
        """`row` itself when it holds exactly `length` slots and nobody writes to it, else a new
        row holding a copy of its first `length` slots."""
        if row.owner is None and self.cache.length(row.index) == length:
            return row
        new = self._new_row()
        self.cache.copy_prefix(row.index, new.index, length)
        return new

    # ---- forwards -----------------------------------------------------------------------------------
    def _extend(self) -> None:
        todo = [a for a in self.active if len(a.pending) >= 2 and a.leader is None]
        if not todo:
            return
        for i, act in enumerate(todo):  # extending rows first, so the forward runs on a slice
            self._swap(act.row.index, i)
        counts = [len(a.pending) - 1 for a in todo]
        width = max(counts)
        keep = max(1, min(width, max(a.seg.logprob_tail for a in todo)))
        grid = torch.zeros(4, len(todo), width, dtype=torch.long)  # ids, pos, slots, valid
        for i, (act, c) in enumerate(zip(todo, counts)):
            pad, base = width - c, self.cache.length(act.row.index)
            grid[0, i, pad:] = torch.tensor(act.pending[:-1])
            grid[1, i, pad:] = act.pos + torch.arange(c)
            grid[2, i] = base + (torch.arange(width) - pad) % width  # pads write past the end
            grid[3, i, pad:] = 1
        logits = self._forward(grid, slice(0, len(todo)), keep)  # [E, K, V]
        self._extension_logprobs(todo, counts, logits)
        for act, c in zip(todo, counts):
            self.cache.lengths[act.row.index] += c
            act.pending, act.pos = act.pending[-1:], act.pos + c

    def _extension_logprobs(self, todo: list[_Active], counts: list[int],
                            logits: torch.Tensor) -> None:
        keep = logits.shape[1]
        want = []  # (row, column, token, act, extension index)
        for i, (act, c) in enumerate(zip(todo, counts)):
            ext = len(act.seg.extension)
            for e in range(ext - act.seg.logprob_tail, ext):
                col = act.num_parent + e - 1 - (c - keep)  # logits of the token before it
                if 0 <= col < keep and act.num_parent + e >= 1:
                    want.append((i, col, act.seg.extension[e], act, e))
        if not want:
            return
        temp = torch.tensor([_temp(todo[i].seg) for i, *_ in want], device=logits.device)
        picked = logits[[w[0] for w in want], [w[1] for w in want]]  # [N, V]
        logp = (picked.to(_work(logits)) / temp[:, None].to(_work(logits))).log_softmax(-1)
        ids = torch.tensor([w[2] for w in want], device=logits.device)
        values = logp.gather(1, ids[:, None])[:, 0].tolist()  # one copy to the host
        for (_, _, _, act, e), v in zip(want, values):
            act.result.extension_logprobs[e] = v

    def _decode(self) -> list[SegmentResult]:
        acts = sorted(self.active, key=lambda a: a.row.index)  # rows [0, R)
        n = len(acts)
        assert n == self.num_active, (n, self.num_active)
        lengths = [self.cache.length(a.row.index) for a in acts]  # kept on the host
        grid = torch.tensor([[a.pending[0] for a in acts], [a.pos for a in acts], lengths,
                             [1] * n], dtype=torch.long)[:, :, None]  # [4, R, 1]
        same = lengths[0] if lengths.count(lengths[0]) == n else None
        logits = self._forward(grid, slice(0, n), 1, same)[:, -1]  # [R, V]
        self.cache.lengths[:n] += 1
        rows = self._sample(acts, logits)  # one copy to the host
        done = []
        for act, row in zip(acts, rows):
            act.pos += 1
            if self._record(act, row):
                done.append(self._finish(act))
        return done

    def _sample(self, acts: list[_Active], logits: torch.Tensor) -> list[list[float]]:
        dev, segs = logits.device, [a.seg for a in acts]
        width = max(len(s.watch_ids) + len(s.score_ids) for s in segs)
        ints = torch.tensor([[s.top_k, s.seed, len(a.result.tokens), *s.watch_ids, *s.score_ids]
                             + [0] * (width - len(s.watch_ids) - len(s.score_ids))
                             for s, a in zip(segs, acts)], dtype=torch.long).to(dev)  # [R, 3+W+S]
        floats = torch.tensor([[s.temperature, s.top_p, s.min_p] for s in segs]).to(dev)  # [R, 3]
        temps, has_min_p = {s.temperature for s in segs}, any(s.min_p for s in segs)
        ids, logp = sample(logits, floats[:, 0], ints[:, 0], floats[:, 1], ints[:, 1],
                           ints[:, 2], filtered=has_min_p or any(s.top_k or s.top_p < 1
                                                                 for s in segs),
                           scaled=bool(temps - {0.0, 1.0}),
                           greedy=True if temps == {0.0} else False if 0.0 not in temps else None,
                           min_p=floats[:, 2] if has_min_p else None)
        cols = torch.cat([ids[:, None], ints[:, 3:]], dim=1)  # [R, 1 + W + S]
        out = torch.cat([ids[:, None].to(torch.float64), logp.gather(1, cols).to(torch.float64)],
                        dim=1)  # [R, 2 + W + S]
        return out.tolist()  # the one copy to the host of this step

    def _record(self, act: _Active, row: list[float]) -> bool:
        """Apply one decode to a segment; True when it is finished."""
        seg, res = act.seg, act.result
        nw = len(seg.watch_ids)
        if seg.max_tokens == 0:
            res.score = row[2 + nw:2 + nw + len(seg.score_ids)]
            return True
        tok = int(row[0])
        res.tokens.append(tok)
        res.logprobs.append(row[1])
        res.watch.append(row[2:2 + nw])
        if tok in seg.stop_ids:
            res.finish = "stop"
            return True
        if len(res.tokens) >= seg.max_tokens:
            res.finish = "length"
            return True
        act.pending = [tok]
        return False

    def _forward(self, grid: torch.Tensor, rows: slice, keep: int,
                 same_slot: int | None = None) -> torch.Tensor:
        """One model call writing into cache rows; returns the last `keep` logits [R, K, V]
        (`same_slot`: a decode where every row writes that slot)."""
        dtype = self.model.dtype
        view = max(int(grid[2].max()) + 1, int(self.cache.lengths[rows].max()))
        grid = grid.to(self.device)
        ids, pos, slots, valid = grid
        self.cache.begin(rows, slots, view, same_slot)
        keys = torch.arange(self.cache.view_len, device=self.device)[None, None]  # [1, 1, L]
        allowed = (keys <= slots[:, :, None]) & (valid.bool()[:, :, None] |
                                                 (keys == slots[:, :, None]))  # [R, T, L]
        mask = torch.zeros(allowed.shape, dtype=dtype, device=self.device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        out = self.run_model(input_ids=ids, position_ids=pos, attention_mask=mask[:, None],
                         past_key_values=self.cache, use_cache=True, logits_to_keep=keep)
        return out.logits.to(_work(out.logits))

    # ---- rows ---------------------------------------------------------------------------------------
    def _finish(self, act: _Active) -> SegmentResult:
        self.active.remove(act)
        del self.running[act.seg.key]
        fed = max(len(act.result.tokens) - 1, 0)
        self.held[act.seg.key] = _Held(act.row, act.ctx_len, act.pos0, list(act.result.tokens),
                                       fed)
        self._stop(act.row)  # the running segment's reference passes to the held result
        return act.result

    def _new_row(self) -> _Row:
        if self.kv_budget_bytes is not None:
            self.cache.max_rows = self.max_rows(self.cache.cap_len)
        row = _Row(self.cache.add_row())
        self.rows.append(row)
        return row

    def _activate(self, row: _Row) -> None:
        if row.index >= self.num_active:
            self._swap(row.index, self.num_active)
            self.num_active += 1

    def _stop(self, row: _Row) -> None:
        row.owner = None
        if row.index < self.num_active:
            self._swap(row.index, self.num_active - 1)
            self.num_active -= 1

    def _unref(self, row: _Row) -> None:
        row.refs -= 1
        if row.refs == 0 and row.owner is None:
            self._swap(row.index, len(self.rows) - 1)
            self.rows.pop()
            self.cache.pop_row()

    def _swap(self, a: int, b: int) -> None:
        if a == b:
            return
        self.cache.swap(a, b)
        self.rows[a], self.rows[b] = self.rows[b], self.rows[a]
        self.rows[a].index, self.rows[b].index = a, b


def _work(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _temp(seg: Segment) -> float:
    return seg.temperature if seg.temperature > 0 else 1.0
