"""The built-in engine: a Hugging Face causal LM, a forkable KV cache and the block program.

Every step runs one forward pass over all active threads of all requests (main texts and paths
alike, [R, 1] tokens); new prompts are prefilled once and forked into their n samples; a block
forks a row per path without recomputing the prefix and joins the paths' cached keys and values
back into one row. Causal and structured mode, exact log-probs, a hard length cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from parallel_r1.engine import program as prog
from parallel_r1.engine.kv import RowCache
from parallel_r1.engine.sampler import sample as sample_tokens
from parallel_r1.engine.types import Request, Rollout, SamplingParams
from parallel_r1.errors import EngineError
from parallel_r1.format.tags import TagIds
from parallel_r1.structure import layout_from_ids

_NO_TAGS = TagIds(-1, -1, -1, -1, -1, -1)


@dataclass
class StepOutput:
    """Tokens a sample gained in one step (in sequence order), and its rollout once finished."""

    request_id: str
    index: int
    new_ids: list[int]
    rollout: Rollout | None = None


class TorchEngine:
    """Batched sampling in causal and structured mode on one device."""

    capabilities = frozenset({"causal", "structured", "logprobs"})

    def __init__(self, model: Any, tokenizer: Any, *, stop_ids: Sequence[int] | None = None,
                 max_context: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        try:
            self.tags: TagIds | None = TagIds.from_tokenizer(tokenizer)
        except EngineError as exc:
            self.tags, self._tags_error = None, str(exc)
        self.stop_ids = set(stop_ids) if stop_ids is not None else _default_stop_ids(model, tokenizer)
        self.max_context = max_context or getattr(model.config, "max_position_embeddings", 1 << 30)
        newline = tokenizer.encode("\n", add_special_tokens=False)
        self.program = prog.Program(self.tags or _NO_TAGS, self.stop_ids, newline)
        self.cache = RowCache(self.device)
        self.rows: list[prog.Thread] = []  # thread owning each cache row
        self.waiting: list[Request] = []
        self.samples: dict[tuple[str, int], prog.Sample] = {}
        self._streamed: dict[tuple[str, int], int] = {}
        self._rng = random.Random()

    # ---- public API -------------------------------------------------------------------------------
    def add_request(self, request: Request) -> None:
        """Queue a request; it joins the running batch at the next step."""
        p = request.params
        if p.parallel.mode == "structured" and self.tags is None:
            raise EngineError(f"structured mode needs the six tags: {self._tags_error}")
        if not request.prompt_ids:
            raise EngineError(f"request {request.request_id}: empty prompt")
        need = len(request.prompt_ids) + p.max_tokens
        if need > self.max_context:
            raise EngineError(
                f"request {request.request_id}: prompt of {len(request.prompt_ids)} tokens + "
                f"max_tokens {p.max_tokens} = {need} exceeds the model's context of "
                f"{self.max_context} tokens; shorten the prompt or lower max_tokens")
        if request.seeds is not None and len(request.seeds) != p.n:
            raise EngineError(f"request {request.request_id}: {len(request.seeds)} seeds for n={p.n}")
        self.waiting.append(request)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.rows)

    def abort(self, request_id: str) -> None:
        """Drop a request: its rows are freed at once."""
        self.waiting = [r for r in self.waiting if r.request_id != request_id]
        for th in [t for t in self.rows if t.sample.request.request_id == request_id]:
            if th in self.rows:
                self._free(th)
        for key in [k for k in self.samples if k[0] == request_id]:
            del self.samples[key]
            self._streamed.pop(key, None)

    @torch.no_grad()
    def step(self) -> list[StepOutput]:
        """Admit waiting requests, run one decode forward, apply every thread's decision."""
        if self.waiting:
            self._prefill(self.waiting)
            self.waiting = []
        if self.rows and any(t.feed is not None for t in self.rows):
            self._decode()
        return self._outputs()

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams, *,
                 seeds: Sequence[Sequence[int]] | None = None, progress: bool = False
                 ) -> list[Rollout]:
        """Sample params.n completions per prompt; returns them prompt-major ([B * n]).

        With params.seed set, sample j of prompt i uses seed + i * n + j (unless `seeds` gives
        them explicitly), so no two samples share a seed and each is reproducible alone.
        """
        ids = [f"gen-{i}" for i in range(len(prompts))]
        if seeds is None and params.seed is not None:  # distinct seeds across prompts too
            seeds = [[params.seed + i * params.n + j for j in range(params.n)]
                     for i in range(len(prompts))]
        for i, prompt in enumerate(prompts):
            self.add_request(Request(ids[i], list(prompt), params,
                                     list(seeds[i]) if seeds is not None else None))
        done: dict[tuple[str, int], Rollout] = {}
        bar = _progress(len(prompts) * params.n, progress)
        while self.has_unfinished():
            for out in self.step():
                if out.rollout is not None:
                    done[(out.request_id, out.index)] = out.rollout
                    bar.update(1)
        bar.close()
        return [done[(rid, j)] for rid in ids for j in range(params.n)]

    # ---- prefill ----------------------------------------------------------------------------------
    def _prefill(self, requests: list[Request]) -> None:
        lens = [len(r.prompt_ids) for r in requests]
        width = max(lens)
        rows = self.cache.add_rows(len(requests))
        first = rows[0]
        ids = torch.zeros(len(requests), width, dtype=torch.long)  # [R, T] left-padded
        pos = torch.zeros(len(requests), width, dtype=torch.long)  # [R, T]
        slots = torch.zeros(len(requests), width, dtype=torch.long)  # [R, T]
        real = torch.zeros(len(requests), width, dtype=torch.bool)  # [R, T]
        for i, (r, n) in enumerate(zip(requests, lens)):
            pad = width - n
            ids[i, pad:] = torch.tensor(r.prompt_ids)
            pos[i, pad:] = torch.arange(n)
            slots[i, pad:] = torch.arange(n)
            slots[i, :pad] = torch.arange(n, width)  # padding writes past the end, never read
            real[i, pad:] = True
        keys = torch.arange(width)[None, None, :]  # [1, 1, L]
        allowed = (keys <= slots[:, :, None]) & (keys < torch.tensor(lens)[:, None, None])
        allowed &= real[:, :, None]
        allowed |= keys == slots[:, :, None]  # padding queries see their own slot only
        logits = self._forward(ids, pos, slots, allowed, slice(first, first + len(requests)))
        for i, n in enumerate(lens):
            self.cache.lengths[first + i] = n
        threads, rows_logits = [], []
        for i, r in enumerate(requests):  # every request's first sample owns its prompt row
            threads.append(self._new_sample(r, 0, first + i))
            rows_logits.append(logits[i])
        for i, r in enumerate(requests):  # the other samples fork it
            for j in range(1, r.params.n):
                row = self.cache.add_rows(1)[0]
                self.cache.copy_prefix(first + i, row, len(r.prompt_ids))
                threads.append(self._new_sample(r, j, row))
                rows_logits.append(logits[i])
        self._decide(threads, torch.stack(rows_logits))

    def _new_sample(self, request: Request, j: int, row: int) -> prog.Thread:
        seed = self._seed(request, j)
        s = prog.Sample(request, j, seed, torch.Generator().manual_seed(seed))
        self.samples[(request.request_id, j)] = s
        self._streamed[(request.request_id, j)] = 0
        th = prog.Thread(sample=s, kind=prog.MAIN, row=row, pos=len(request.prompt_ids))
        s.main = th
        self._own(th)
        return th

    def _seed(self, request: Request, j: int) -> int:
        if request.seeds is not None:
            return int(request.seeds[j])
        if request.params.seed is not None:
            return request.params.seed + j
        return self._rng.randrange(2**31)

    # ---- decode -----------------------------------------------------------------------------------
    def _decode(self) -> None:
        n = len(self.rows)
        fed = torch.tensor([t.feed is not None for t in self.rows])  # [R]
        ids = torch.tensor([[t.feed if t.feed is not None else 0] for t in self.rows])  # [R, 1]
        pos = torch.tensor([[t.pos if t.feed is not None else 0] for t in self.rows])  # [R, 1]
        lengths = self.cache.lengths[:n]
        slots = lengths[:, None].clone()  # [R, 1]
        keys = torch.arange(int(lengths.max()) + 1)[None, None, :]  # [1, 1, L]
        allowed = keys <= slots[:, :, None]  # [R, 1, L]
        logits = self._forward(ids, pos, slots, allowed, slice(0, n))
        self.cache.lengths[:n] += fed.long()
        threads = list(self.rows)
        for t in threads:
            if t.feed is not None:
                t.pos += 1
        active = [i for i, t in enumerate(threads) if t.feed is not None]
        self._decide([threads[i] for i in active], logits[active])

    def _forward(self, ids: torch.Tensor, pos: torch.Tensor, slots: torch.Tensor,
                 allowed: torch.Tensor, rows: slice) -> torch.Tensor:
        """One model call writing into cache rows; returns last-position logits [R, V]."""
        dtype = self.model.dtype
        self.cache.begin(rows, slots)
        view = self.cache.view_len
        allowed = torch.nn.functional.pad(allowed, (0, view - allowed.shape[-1]))  # [R, T, L]
        mask = torch.zeros(allowed.shape, dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        out = self.model(input_ids=ids.to(self.device), position_ids=pos.to(self.device),
                         attention_mask=mask[:, None].to(self.device), past_key_values=self.cache,
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1]  # [R, V]
        return logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32

    # ---- decisions --------------------------------------------------------------------------------
    def _decide(self, threads: list[prog.Thread], logits: torch.Tensor) -> None:
        if not threads:
            return
        params = [t.sample.params for t in threads]
        temp = torch.tensor([p.temperature for p in params], dtype=torch.float32)
        top_k = torch.tensor([p.top_k for p in params], dtype=torch.long)
        top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32)
        gens = [t.generator or t.sample.generator for t in threads]
        ids, logp = sample_tokens(logits, temp.to(logits.device), top_k.to(logits.device),
                                  top_p.to(logits.device), gens)
        ids, logp = ids.tolist(), logp.cpu()
        for i, th in enumerate(threads):
            if th.sample.finish is not None:
                continue
            effects = self.program.decide(th, logp[i], lambda i=i: ids[i])
            self._apply(th, effects)

    def _apply(self, th: prog.Thread, effects: prog.Effects) -> None:
        if effects.finished:
            self._finish_sample(th.sample)
            return
        for path in effects.fork:
            block = path.block
            if path.index == 0:  # the first path takes over the main row
                block.prefix_len = int(self.cache.lengths[th.row])
                path.row = th.row
                self.rows[th.row] = path
            else:
                src = path.row
                path.row = self.cache.add_rows(1)[0]
                self.cache.copy_prefix(src, path.row, block.prefix_len)
                self.rows.append(path)
        if effects.join is not None:
            self._join(th.sample, effects.join)

    def _join(self, s: prog.Sample, block: prog.Block) -> None:
        target = block.paths[0].row
        for p in block.paths[1:]:
            self.cache.append_slots(target, p.row, block.prefix_len, block.prefix_len + len(p.tokens))
        for p in block.paths[1:]:
            self._free(p)
        main = s.main
        main.row = block.paths[0].row
        self.rows[main.row] = main
        self.program.join(main, block)
        if len(s.completion) >= s.params.max_tokens and not main.forced:
            s.finish = "length"
            self._finish_sample(s)

    def _finish_sample(self, s: prog.Sample) -> None:
        for th in [t for t in self.rows if t.sample is s]:
            self._free(th)

    def _own(self, th: prog.Thread) -> None:
        if th.row == len(self.rows):
            self.rows.append(th)
        else:
            self.rows[th.row] = th

    def _free(self, th: prog.Thread) -> None:
        row = th.row
        moved = self.cache.remove_row(row)
        last = self.rows.pop()
        if moved is not None:
            self.rows[row] = last
            last.row = row

    # ---- outputs ----------------------------------------------------------------------------------
    def _outputs(self) -> list[StepOutput]:
        outs = []
        for key, s in list(self.samples.items()):
            seen = self._streamed[key]
            new = s.completion[seen:]
            self._streamed[key] = len(s.completion)
            rollout = self._rollout(s) if s.finish is not None else None
            if new or rollout is not None:
                outs.append(StepOutput(key[0], key[1], list(new), rollout))
            if rollout is not None:
                del self.samples[key], self._streamed[key]
        return outs

    def _rollout(self, s: prog.Sample) -> Rollout:
        prompt = s.request.prompt_ids
        structured = s.params.parallel.mode == "structured"
        layout = layout_from_ids(prompt + s.completion, self.tags or _NO_TAGS, start=len(prompt),
                                 structured=structured)
        text_ids = s.completion[:-1] if s.finish == "stop" else s.completion
        text = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        return Rollout(
            request_id=s.request.request_id, index=s.index, seed=s.seed, prompt_ids=list(prompt),
            completion_ids=list(s.completion), logprobs=list(s.logprobs),
            loss_mask=list(s.mask), finish_reason=s.finish, layout=layout, text=text,
            num_blocks=s.num_blocks, critical_path_length=layout.critical_path_length())


def _default_stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(int(i) for i in gen_eos)
    return ids


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sampling", unit="sample")
