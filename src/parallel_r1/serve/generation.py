"""One HTTP request's generation: submit to the worker, turn events into per-choice text deltas.

Choices are numbered prompt-major (choice = prompt * n + sample), as in the OpenAI API. A choice
ended by a stop string no longer needs its sample, so once every sample of a prompt is done the
engine request is aborted; a client that goes away aborts everything still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from parallel_r1.engine.types import Request
from parallel_r1.serve.choice import ChoiceSpec, ChoiceState
from parallel_r1.serve.worker import EngineWorker

POLL_S = 0.25  # how often a waiting handler checks that its client is still connected


class ClientGone(Exception):
    """The client closed the connection; the generation was aborted."""


class ShuttingDown(Exception):
    """The server's shutdown grace period ran out; the generation was aborted."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down: the generation was stopped when the "
                         "shutdown grace period ran out")


class Generation:
    """Drives the engine requests of one HTTP request (one per prompt) to completion.

    `max_backlog` (streams): events left unread after which the worker stops the generation.
    """

    def __init__(self, worker: EngineWorker, requests: list[Request], specs: list[ChoiceSpec],
                 max_backlog: int | None = None):
        self.worker, self.requests, self.max_backlog = worker, requests, max_backlog
        self.n = requests[0].params.n
        self.choices = [ChoiceState(spec) for spec in specs for _ in range(self.n)]
        self._running = [self.n] * len(requests)  # samples per prompt without a rollout yet
        self._handle = None
        self._closed = False
        self.stop: asyncio.Event | None = None  # set when the server's shutdown grace is over

    async def start(self) -> None:
        """Submit and wait until the engine accepted every prompt.

        Raises:
            EngineError (or whatever the engine raised): the settings were rejected.
        """
        self._handle = self.worker.submit(self.requests, asyncio.get_running_loop(),
                                          self.max_backlog)
        event = await self._handle.next()
        if event.kind == "error":
            self._closed = True
            raise event.error

    async def deltas(self, is_disconnected: Callable[[], Awaitable[bool]],
                     stop: asyncio.Event | None = None) -> AsyncIterator[tuple[int, str, bool]]:
        """Yield (choice index, new text, whether that choice just finished) until all are done.

        Args:
            stop: once set, the generation is aborted (the server's shutdown grace is over).
        Raises:
            ClientGone: `is_disconnected()` turned true while waiting (everything is aborted).
            ShuttingDown: `stop` was set (everything is aborted).
            RuntimeError: the engine failed on this request.
        """
        loop = asyncio.get_running_loop()
        next_check = loop.time() + POLL_S
        while not all(c.done for c in self.choices):
            if stop is not None and stop.is_set():
                self.close()
                raise ShuttingDown()
            event = await self._handle.next(POLL_S)
            if event is None or loop.time() >= next_check:  # also while tokens keep coming
                next_check = loop.time() + POLL_S
                if await is_disconnected():
                    self.close()
                    raise ClientGone()
            if event is None:
                continue
            if event.kind == "error":
                self._closed = True
                raise RuntimeError(f"generation failed: {event.error}") from event.error
            yield self._apply(event)

    def has_queued(self) -> bool:
        """Whether events the engine delivered are waiting to be read."""
        return self._handle is not None and not self._handle.queue.empty()

    def _apply(self, event: Any) -> tuple[int, str, bool]:
        out, prompt = event.output, event.prompt_index
        index = prompt * self.n + out.index
        choice = self.choices[index]
        was_done = choice.done
        delta = choice.feed(out.new_ids, event.logprobs, out.rollout, event.filled)
        if out.rollout is not None:
            self._running[prompt] -= 1
        prompt_choices = self.choices[prompt * self.n:(prompt + 1) * self.n]
        if self._running[prompt] and all(c.done for c in prompt_choices):
            self.worker.abort(self.requests[prompt].request_id)  # all cut by stop strings
            self._running[prompt] = 0
        return index, delta, choice.done and not was_done

    async def run(self, is_disconnected: Callable[[], Awaitable[bool]],
                  stop: asyncio.Event | None = None) -> None:
        """Run to completion without streaming (still aborting if the client leaves or `stop`
        is set)."""
        try:
            async for _ in self.deltas(is_disconnected, stop):
                pass
        finally:
            self.close()

    def close(self) -> None:
        """Abort whatever is still running (idempotent); safe from a `finally`."""
        if self._closed:
            return
        self._closed = True
        for prompt, request in enumerate(self.requests):
            if self._running[prompt]:
                self.worker.abort(request.request_id)
                self._running[prompt] = 0
