"""The engine API over any backend: requests in, streamed tokens and rollouts out.

`Engine` runs one block program (`program.SampleProgram`) per sample and hands the segments it
asks for to a backend (`segments.py`): the built-in `TorchBackend`, an OpenAI-compatible server,
or vLLM. Samples start while the backend's KV budget holds their worst case (the main row and
one row per path, plus the re-read row in the threads layout), so rollouts are admitted in
waves rather than all at once. The API has vLLM's shape: `add_request` / `step` / `abort`, and
`generate` on top.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

from parallel_r1.engine.program import Rules, SampleProgram
from parallel_r1.engine.prompts import as_prompt_ids, check_prompt_ids
from parallel_r1.engine.types import Request, Rollout, SamplingParams
from parallel_r1.errors import EngineError
from parallel_r1.format.tags import TagIds
from parallel_r1.structure import layout_from_ids

NO_TAGS = TagIds(-1, -1, -1, -1, -1, -1)


@dataclass
class StepOutput:
    """Tokens a sample gained in one step (in sequence order), and its rollout once finished."""

    request_id: str
    index: int
    new_ids: list[int]
    rollout: Rollout | None = None
    logprobs: list[float | None] | None = None  # of new_ids; None where not known yet


class Engine:
    """Batched sampling in the causal, threads and structured layouts over one backend."""

    def __init__(self, backend: Any, tokenizer: Any, *, stop_ids: Sequence[int] | None = None,
                 max_context: int | None = None, model: Any = None):
        self.backend, self.tokenizer = backend, tokenizer
        try:
            self.tags: TagIds | None = TagIds.from_tokenizer(tokenizer)
        except EngineError as exc:
            self.tags, self._tags_error = None, str(exc)
        self.stop_ids = set(stop_ids) if stop_ids is not None else default_stop_ids(
            model, tokenizer)
        config = getattr(model, "config", None)
        self.max_context = max_context or getattr(config, "max_position_embeddings", 1 << 30)
        self.vocab_size = vocab_size_of(model, tokenizer)  # prompt ids must be below it
        newline = tuple(tokenizer.encode("\n", add_special_tokens=False))
        self.rules = Rules(self.tags or NO_TAGS, frozenset(self.stop_ids), newline,
                           "score" in backend.capabilities)
        self.waiting: deque[list[Any]] = deque()  # [request, next sample index]
        self.samples: dict[tuple[str, int], SampleProgram] = {}
        self._owner: dict[int, SampleProgram] = {}  # segment key -> its program
        self._emitted: dict[tuple[str, int], int] = {}
        self._rows: dict[tuple[str, int], int] = {}  # KV rows reserved per running sample
        self._keys = itertools.count()
        self._rng = random.Random()

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.backend.capabilities)

    # ---- public API -------------------------------------------------------------------------------
    def add_request(self, request: Request) -> None:
        """Queue a request; its samples start at the next step the KV budget allows.

        Raises:
            EngineError: a layout the tokenizer or the backend cannot run, prompt ids that are
                not a non-empty list of ints in the vocabulary, a too long prompt, or a sample
                larger than the whole KV budget.
        """
        self.check_request(request)
        self.waiting.append([request, 0])

    def check_request(self, request: Request) -> None:
        """Raise the EngineError `add_request` would raise for `request`; queue nothing."""
        p = request.params
        mode = p.parallel.mode
        if mode != "causal" and self.tags is None:
            raise EngineError(f"the {mode} layout needs the six tags: {self._tags_error}")
        if mode == "structured" and not {"structured_join", "score"} <= self.capabilities:
            raise EngineError("the structured layout needs the built-in engine (backend 'torch');"
                              " this backend runs the causal and threads layouts")
        check_prompt_ids(request.prompt_ids, self.vocab_size,
                         f"request {request.request_id}: prompt_ids")
        need = len(request.prompt_ids) + p.max_tokens
        if need > self.max_context:
            raise EngineError(
                f"request {request.request_id}: prompt of {len(request.prompt_ids)} tokens + "
                f"max_tokens {p.max_tokens} = {need} exceeds the model's context of "
                f"{self.max_context} tokens; shorten the prompt or lower max_tokens")
        if request.seeds is not None and len(request.seeds) != p.n:
            raise EngineError(f"request {request.request_id}: {len(request.seeds)} seeds for n={p.n}")
        cap = self.backend.max_rows(need + 1)
        if cap is not None and rows_per_sample(p) > cap:
            raise EngineError(f"request {request.request_id}: one sample needs up to "
                              f"{rows_per_sample(p)} KV rows of {need + 1} tokens, but the KV "
                              f"budget holds {cap}; raise the budget or lower max_tokens")

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.samples)

    @property
    def rows(self) -> list[Any]:
        """The backend's running rows (for load reports)."""
        return list(getattr(self.backend, "active", ()))

    def request_of(self, segment_key: int) -> str | None:
        """The request a running segment belongs to (None once it is dropped)."""
        prog = self._owner.get(segment_key)
        return prog.request.request_id if prog is not None else None

    def abort(self, request_id: str) -> None:
        """Drop a request: its segments are cancelled and its rows freed at once."""
        self.waiting = deque(w for w in self.waiting if w[0].request_id != request_id)
        for key in [k for k in self.samples if k[0] == request_id]:
            prog = self.samples.pop(key)
            self.backend.cancel(list(prog.active))
            self.backend.release(prog.live + prog.to_release)
            for seg_key in prog.active:
                self._owner.pop(seg_key, None)
            self._emitted.pop(key, None)
            self._rows.pop(key, None)

    def step(self) -> list[StepOutput]:
        """Start samples, advance the backend once, feed finished segments to their programs."""
        self._admit()
        if self.backend.has_work():
            for res in self.backend.step():
                prog = self._owner.pop(res.key, None)
                if prog is None:  # its sample was aborted
                    self.backend.release([res.key])
                    continue
                self._submit(prog, prog.on_result(res))
        return self._outputs()

    def generate(self, prompts: Sequence[Sequence[int]] | Sequence[int], params: SamplingParams,
                 *, seeds: Sequence[Sequence[int]] | None = None, progress: bool = False
                 ) -> list[Rollout]:
        """Sample params.n completions per prompt; returns them prompt-major ([B * n]).

        Args:
            prompts: token ids: B prompts as list[list[int]] (or 1-D integer tensors), or one
                prompt as list[int]; `parallel_r1.apply_template` turns text into them.
            params: sampling settings and the layout (`params.parallel.mode`).
            seeds: explicit per-sample seeds [B][n]. With params.seed set instead, sample j of
                prompt i uses seed + i * n + j, so no two samples share a seed and each is
                reproducible alone.

        Raises:
            EngineError: prompts that are not token ids (text, a BatchEncoding, a dict, a 2-D
                tensor, None...), ids outside the vocabulary, or a request `add_request` refuses;
                all before any sampling.
        """
        prompts = as_prompt_ids(prompts, vocab_size=self.vocab_size)
        ids = [f"gen-{i}" for i in range(len(prompts))]
        if seeds is None and params.seed is not None:  # distinct seeds across prompts too
            seeds = [[params.seed + i * params.n + j for j in range(params.n)]
                     for i in range(len(prompts))]
        requests = [Request(ids[i], prompt, params, list(seeds[i]) if seeds is not None else None)
                    for i, prompt in enumerate(prompts)]
        for request in requests:  # every prompt checked before any is queued
            self.check_request(request)
        for request in requests:
            self.add_request(request)
        done: dict[tuple[str, int], Rollout] = {}
        bar = _progress(len(prompts) * params.n, progress)
        while self.has_unfinished():
            for out in self.step():
                if out.rollout is not None:
                    done[(out.request_id, out.index)] = out.rollout
                    bar.update(1)
        bar.close()
        return [done[(rid, j)] for rid in ids for j in range(params.n)]

    # ---- internals ----------------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.waiting:
            request, j = self.waiting[0]
            p = request.params
            cap = self.backend.max_rows(len(request.prompt_ids) + p.max_tokens + 1)
            if cap is not None and sum(self._rows.values()) + rows_per_sample(p) > cap:
                return
            seed = self._seed(request, j)
            prog = SampleProgram(request, j, seed, self.rules, self._keys)
            key = (request.request_id, j)
            self.samples[key], self._emitted[key], self._rows[key] = prog, 0, rows_per_sample(p)
            self._submit(prog, prog.start())
            self.waiting[0][1] += 1
            if self.waiting[0][1] == p.n:
                self.waiting.popleft()

    def _submit(self, prog: SampleProgram, segments: list[Any]) -> None:
        for seg in segments:
            self._owner[seg.key] = prog
        if segments:
            self.backend.submit(segments)
        if prog.to_release:  # after the submit: a new segment pins what it continues
            self.backend.release(prog.to_release)
            prog.to_release = []

    def _seed(self, request: Request, j: int) -> int:
        if request.seeds is not None:
            return int(request.seeds[j])
        if request.params.seed is not None:
            return request.params.seed + j
        return self._rng.randrange(2**31)

    def _outputs(self) -> list[StepOutput]:
        outs = []
        for key, prog in list(self.samples.items()):
            seen = self._emitted[key]
            rollout = self._rollout(prog) if prog.finish is not None else None
            if rollout is not None:
                new, logprobs = rollout.completion_ids[seen:], rollout.logprobs[seen:]
            else:  # final tokens, then what the running main segment drew so far
                base = len(prog.completion)
                new, logprobs = prog.completion[seen:], prog.logprobs[seen:]
                if prog.current is not None:
                    more, more_lp = self.backend.partial(prog.current, max(0, seen - base))
                    new, logprobs = new + more, logprobs + more_lp
            self._emitted[key] = seen + len(new)
            if new or rollout is not None:
                shown = [None if math.isnan(x) else x for x in logprobs]
                outs.append(StepOutput(key[0], key[1], new, rollout, shown))
            if rollout is not None:
                del self.samples[key], self._emitted[key], self._rows[key]
                if prog.active:  # e.g. the siblings of a failed path
                    self.backend.cancel(list(prog.active))
                    for seg_key in prog.active:
                        self._owner.pop(seg_key, None)
        return outs

    def _rollout(self, prog: SampleProgram) -> Rollout:
        prompt = prog.request.prompt_ids
        layout = layout_from_ids(prompt + prog.completion, self.tags or NO_TAGS,
                                 start=len(prompt), layout=prog.par.mode)
        text_ids = prog.completion[:-1] if prog.finish == "stop" else prog.completion
        text = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        return Rollout(
            request_id=prog.request.request_id, index=prog.index, seed=prog.seed,
            prompt_ids=list(prompt), completion_ids=list(prog.completion),
            logprobs=list(prog.logprobs), loss_mask=list(prog.mask), finish_reason=prog.finish,
            layout=layout, text=text, num_blocks=prog.num_blocks,
            critical_path_length=layout.critical_path_length(), error=prog.error)


def rows_per_sample(params: SamplingParams) -> int:
    """KV rows one sample may hold at once: its main row, one per path, the threads re-read."""
    par = params.parallel
    if par.mode == "causal":
        return 1
    paths = par.num_paths or par.max_paths
    return paths + 1 if par.mode == "threads" else paths


def vocab_size_of(model: Any, tokenizer: Any) -> int | None:
    """Rows of the model's input embedding (else the tokenizer's size): the ids a prompt may hold."""
    embed = getattr(model, "get_input_embeddings", None)
    weight = getattr(embed() if callable(embed) else None, "weight", None)
    if weight is not None and getattr(weight, "ndim", 0) == 2:
        return int(weight.shape[0])
    try:
        return len(tokenizer)
    except TypeError:
        return None


def default_stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokenizer's end-of-sequence token and the model's generation-config ones."""
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
