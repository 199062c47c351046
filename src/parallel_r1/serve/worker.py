"""The one thread that drives the engine: admits requests, steps, and hands outputs back.

The engine is not thread-safe, so only this thread touches it. HTTP handlers call `submit` and
`abort` from the event loop; both only append to an inbox and wake the thread. Outputs go back to
each caller's asyncio queue through `loop.call_soon_threadsafe`. New requests join the running
batch at the next step, so requests never wait for each other to finish.

Admission is fair and bounded: an accepted job's prompts are handed to the engine round-robin
across jobs, only while the engine's own queue holds less than one wave (what the KV budget
fits) and at most `max_prefill_tokens` prompt tokens per step, so a small request starts within
a step or two of a huge one instead of after it. A streaming job whose client stops reading
is cancelled once `max_backlog` events wait unread, and the KV cache's memory is given back
once the server is idle.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from parallel_r1.engine.types import Request
from parallel_r1.errors import EngineError
from parallel_r1.serve.memory import release_idle

UNBOUNDED_WAVE = 256  # samples queued in an engine without a KV budget
PREFILL_TOKENS = 2048  # prompt tokens handed to the engine per step (at least one prompt)

log = logging.getLogger("parallel_r1.serve")


@dataclass
class Event:
    """What a caller receives: "accepted", "error", or "output" (one StepOutput of one prompt)."""

    kind: str
    prompt_index: int = 0
    output: Any = None  # StepOutput
    logprobs: list[float | None] | None = None  # of output.new_ids, when the engine exposes them
    filled: dict[int, float] | None = None  # earlier tokens' log-probs (by position) now known
    error: BaseException | None = None


@dataclass
class Handle:
    """The caller's side of one submitted job (a list of engine requests, one per prompt)."""

    loop: asyncio.AbstractEventLoop
    request_ids: list[str]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    max_backlog: int | None = None  # unread events after which the job is cancelled
    num_put: int = 0  # counted on the engine thread
    num_taken: int = 0  # counted on the event loop

    def put(self, event: Event) -> None:
        """Thread-safe: deliver `event` to the caller's loop (dropped if that loop is closed)."""
        self.num_put += 1
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:
            pass

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            event = await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        self.num_taken += 1
        return event

    @property
    def is_stalled(self) -> bool:
        """More than `max_backlog` events delivered and not read."""
        return self.max_backlog is not None and self.num_put - self.num_taken > self.max_backlog


class ClientStalled(RuntimeError):
    """A streaming client left too many events unread; its generation was stopped."""


class EngineWorker:
    """Runs `engine.step()` in a background thread while any request is unfinished."""

    def __init__(self, engine: Any, max_prefill_tokens: int = PREFILL_TOKENS):
        self.engine, self.max_prefill_tokens = engine, max_prefill_tokens
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._inbox: list[tuple[Handle, list[Request]]] = []
        self._jobs: deque[tuple[Handle, deque[tuple[int, Request]]]] = deque()  # not yet fed
        self._is_idle = True  # nothing ran since the cache was last given back
        self._aborts: list[str] = []
        self._calls: list[tuple[Any, asyncio.Future]] = []  # run on this thread between steps
        self._owners: dict[str, tuple[Handle, int]] = {}  # engine request id -> (handle, prompt)
        self._left: dict[str, int] = {}  # engine request id -> samples without a rollout yet
        self._received: dict[tuple[str, int], int] = {}  # tokens delivered per sample
        self._pending: dict[tuple[str, int], set[int]] = {}  # delivered without a log-prob
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats: dict[str, int] = {"active_requests": 0, "active_rows": 0, "waiting": 0,
                                      "num_steps": 0, "num_tokens": 0, "num_aborted": 0,
                                      "num_errors": 0, "kv_cache_bytes": 0,
                                      "kv_cache_peak_bytes": 0, "kv_budget_bytes": int(
                                          getattr(getattr(engine, "backend", None),
                                                  "kv_budget_bytes", None) or 0)}

    # ---- called from the event loop --------------------------------------------------------------
    def start(self) -> None:
        """Start the engine thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; callers still waiting get an error event."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, requests: list[Request], loop: asyncio.AbstractEventLoop,
               max_backlog: int | None = None) -> Handle:
        """Queue requests (all or none are admitted); events arrive on the returned handle.

        Args:
            max_backlog: cancel the job once this many events wait unread (streams).
        """
        handle = Handle(loop, [r.request_id for r in requests], max_backlog=max_backlog)
        with self._lock:
            self._inbox.append((handle, list(requests)))
        self._wake.set()
        return handle

    def abort(self, request_id: str) -> None:
        """Free a request's rows at the next step; no more events are sent for it."""
        with self._lock:
            self._aborts.append(request_id)
        self._wake.set()

    def call(self, fn: Any, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """Run `fn()` on the engine thread between two steps (the model is used from that
        thread only); the returned future gets its result or its exception."""
        future = loop.create_future()
        with self._lock:
            self._calls.append((fn, future))
        self._wake.set()
        return future

    def snapshot(self) -> dict[str, int]:
        """Counters for /health: requests in flight, engine rows, steps and tokens so far, the
        KV cache's bytes now and at its peak."""
        return dict(self.stats)

    # ---- the engine thread -----------------------------------------------------------------------
    def _has_work(self) -> bool:
        with self._lock:
            return bool(self._inbox or self._aborts or self._jobs or self._calls
                        or self.engine.has_unfinished())

    def _run(self) -> None:
        while not self._stopping:
            if not self._has_work():
                self._wake.wait()
            self._wake.clear()
            with self._lock:
                inbox, self._inbox = self._inbox, []
                aborts, self._aborts = self._aborts, []
                calls, self._calls = self._calls, []
            for request_id in aborts:
                self._drop(request_id)
            for fn, future in calls:
                _settle(future, fn)
            for handle, requests in inbox:
                self._admit(handle, requests)
            self._feed()
            if self.engine.has_unfinished():
                self._is_idle = False
                try:
                    outputs = self.engine.step()
                except Exception as exc:  # fail the requests in flight, keep serving
                    log.exception("engine step failed")
                    self.stats["num_errors"] += 1
                    self._fail_all(exc)
                else:
                    self._dispatch(outputs)
            if not (self._is_idle or self._jobs or self.engine.has_unfinished()):
                self._is_idle = release_idle(self.engine)
            self._publish()
        self._fail_all(RuntimeError("the server is shutting down"))
        with self._lock:
            calls, self._calls = self._calls, []
        for _, future in calls:
            _deliver(future, RuntimeError("the server is shutting down"), failed=True)

    def _admit(self, handle: Handle, requests: list[Request]) -> None:
        """Check every prompt now (a bad one is the caller's error at once); queue the job."""
        try:
            for request in requests:
                self.engine.check_request(request)
        except Exception as exc:
            if not isinstance(exc, EngineError):  # bad settings are the client's; others ours
                log.exception("admitting a request failed")
            handle.put(Event("error", error=exc))
            return
        for i, request in enumerate(requests):
            self._owners[request.request_id] = (handle, i)
            self._left[request.request_id] = request.params.n
        self._jobs.append((handle, deque(enumerate(requests))))
        handle.put(Event("accepted"))

    def _feed(self) -> None:
        """Hand prompts to the engine, one per job in turn, while its queue is under a wave
        and this step's prompt tokens under `max_prefill_tokens`."""
        num_fed = 0
        while self._jobs:
            handle, pending = self._jobs[0]
            request = pending[0][1]
            num_fed += len(request.prompt_ids)
            if num_fed > max(self.max_prefill_tokens, len(request.prompt_ids)) or \
                    self._queued_samples() >= self._wave(request):
                return
            self._jobs.popleft()
            pending.popleft()
            try:
                self.engine.add_request(request)
            except Exception as exc:  # checked on admission; a failure here is ours
                log.exception("queueing a checked request failed")
                self._fail(handle, exc)
                continue
            if pending:
                self._jobs.append((handle, pending))

    def _queued_samples(self) -> int:
        return sum(r.params.n - j for r, j in getattr(self.engine, "waiting", ()))

    def _wave(self, request: Request) -> int:
        """Samples like `request` the KV budget holds at once (at least one)."""
        max_rows = getattr(getattr(self.engine, "backend", None), "max_rows", None)
        cap = max_rows(len(request.prompt_ids) + request.params.max_tokens + 1) \
            if max_rows is not None else None
        return max(1, cap if cap is not None else UNBOUNDED_WAVE)

    def _fail(self, handle: Handle, exc: BaseException) -> None:
        """End every engine request of `handle` with `exc`."""
        handle.put(Event("error", error=exc))
        for request_id in handle.request_ids:
            self._drop(request_id)

    def _dispatch(self, outputs: list[Any]) -> None:
        self.stats["num_steps"] += 1
        events: list[tuple[Handle, Event]] = []
        for out in outputs:
            owner = self._owners.get(out.request_id)
            if owner is None:
                continue
            handle, prompt_index = owner
            self.stats["num_tokens"] += len(out.new_ids)
            logprobs = self._new_logprobs(out)
            events.append((handle, Event("output", prompt_index, out, logprobs,
                                         self._filled(out, logprobs))))
            if out.rollout is not None:
                self._received.pop((out.request_id, out.index), None)
                self._pending.pop((out.request_id, out.index), None)
                self._left[out.request_id] -= 1
                if self._left[out.request_id] == 0:
                    del self._owners[out.request_id], self._left[out.request_id]
        self._publish()  # before delivery: a client that got its last token sees itself gone
        for handle, event in events:
            handle.put(event)
        for handle in {id(h): h for h, _ in events if h.is_stalled}.values():
            log.warning("a streaming client read nothing while %d events waited: stopped",
                        handle.max_backlog)
            self._fail(handle, ClientStalled(
                f"the client left more than {handle.max_backlog} events unread; the "
                "generation was stopped (serve --stream-buffer)"))

    def _new_logprobs(self, out: Any) -> list[float] | None:
        """Log-probs of `out.new_ids` while the sample runs (StepOutput carries only the ids).

        They are needed when a stop string ends a choice before its rollout exists; read from
        the engine's sample state on this thread, or None where the engine does not keep one.
        """
        key = (out.request_id, out.index)
        seen = self._received.get(key, 0)
        self._received[key] = seen + len(out.new_ids)
        if getattr(out, "logprobs", None) is not None:
            return list(out.logprobs)
        if out.rollout is not None:
            return list(out.rollout.logprobs[seen:seen + len(out.new_ids)])
        sample = getattr(self.engine, "samples", {}).get(key)
        logprobs = getattr(sample, "logprobs", None)
        if logprobs is None or len(logprobs) < seen + len(out.new_ids):
            return None
        return [float(x) for x in logprobs[seen:seen + len(out.new_ids)]]

    def _filled(self, out: Any, logprobs: list[float | None] | None) -> dict[int, float] | None:
        """Log-probs the engine knows now of tokens sent earlier without one (a token the engine
        injects gets its log-prob from the next forward), by completion position."""
        key = (out.request_id, out.index)
        start = self._received[key] - len(out.new_ids) if key in self._received else 0
        pending = self._pending.setdefault(key, set())
        pending.update(start + i for i, x in enumerate(logprobs or []) if x is None)
        known = getattr(getattr(self.engine, "samples", {}).get(key), "logprobs", None)
        if not pending or known is None:
            return None
        filled = {p: float(known[p]) for p in pending
                  if p < len(known) and not math.isnan(known[p])}
        pending.difference_update(filled)
        return filled

    def _drop(self, request_id: str) -> None:
        self.engine.abort(request_id)
        for _, pending in self._jobs:
            for item in [x for x in pending if x[1].request_id == request_id]:
                pending.remove(item)
        self._jobs = deque(job for job in self._jobs if job[1])
        self.stats["num_aborted"] += request_id in self._owners
        self._owners.pop(request_id, None)
        self._left.pop(request_id, None)
        for key in [k for k in self._received if k[0] == request_id]:
            del self._received[key]
            self._pending.pop(key, None)

    def _fail_all(self, exc: BaseException) -> None:
        for request_id, (handle, _) in list(self._owners.items()):
            handle.put(Event("error", error=exc))
            self._drop(request_id)
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for handle, _ in inbox:
            handle.put(Event("error", error=exc))
        self._jobs.clear()

    def _publish(self) -> None:
        cache = getattr(getattr(self.engine, "backend", None), "cache", None)
        kv_bytes = cache.memory_bytes() if cache is not None else 0
        self.stats.update(kv_cache_bytes=kv_bytes,
                          kv_cache_peak_bytes=max(kv_bytes, self.stats["kv_cache_peak_bytes"]))
        self.stats.update(active_requests=len(self._owners),
                          active_rows=len(getattr(self.engine, "rows", ())),
                          waiting=len(getattr(self.engine, "waiting", ()))
                          + sum(len(pending) for _, pending in self._jobs),
                          updated=int(time.time()))


def _settle(future: asyncio.Future, fn: Any) -> None:
    """Run `fn` here and hand its result (or exception) to `future` on its own loop."""
    try:
        result, failed = fn(), False
    except Exception as exc:  # the caller's error, raised where it awaits
        result, failed = exc, True
    _deliver(future, result, failed=failed)


def _deliver(future: asyncio.Future, value: Any, *, failed: bool) -> None:
    def put() -> None:
        if not future.done():
            future.set_exception(value) if failed else future.set_result(value)

    try:
        future.get_loop().call_soon_threadsafe(put)
    except RuntimeError:  # that loop is closed
        pass
