"""Server-sent events of one generation: a chunk per text delta, the extras with each choice's
last chunk, usage when asked, then `[DONE]`; errors after the first byte end the stream with an
error event. Each chunk carries the log-probs of the tokens whose text it completes (vLLM's
shape), so a stream's log-probs add up to the whole reply's; a token the engine injects at a
join (`</Parallel>`, `<Summary>`) comes in the next chunk, as its log-prob needs the next forward.
With alternatives (`logprobs: k`, `top_logprobs`), each chunk scores the tokens so far once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request as HTTPRequest

from parallel_r1.serve.generation import ClientGone, Generation, ShuttingDown
from parallel_r1.serve.logprobs import chat_logprobs, completion_logprobs, prompt_text
from parallel_r1.serve.payloads import chat_delta, completion_choice, error_body, sse, usage
from parallel_r1.serve.schemas import ChatRequest, CompletionRequest

Prepare = Callable[[int, bool], Awaitable[None]]  # (index, last): scores a choice for a chunk


def _unsent(logprobs: dict[str, list], sent: dict[int, int], index: int) -> dict[str, list]:
    """The part of a choice's completions log-probs past the tokens already sent."""
    start = sent.get(index, 0)
    sent[index] = len(logprobs["tokens"])
    return {key: values[start:] for key, values in logprobs.items()}


async def stream_completion(gen: Generation, body: CompletionRequest, meta: dict[str, Any],
                            num_prompt: int, request: HTTPRequest, prepare: Prepare
                            ) -> AsyncIterator[str]:
    """/v1/completions as SSE; `prepare(index, last)` runs before each chunk of a choice."""
    mode, echoed, sent = gen.requests[0].params.parallel.mode, set(), {}

    def choice(index: int, delta: str, finished: bool) -> dict[str, Any]:
        state = gen.choices[index]
        if body.echo and index not in echoed:  # the prompt comes first, in the choice's first chunk
            echoed.add(index)
            delta = prompt_text(state) + delta
        out = completion_choice(state, index, mode, logprobs=False, text=delta, final=finished)
        if body.wants_logprobs:
            out["logprobs"] = _unsent(completion_logprobs(state, num_top=body.num_top,
                                                          echo=body.echo), sent, index)
        return out

    async for chunk in _stream(gen, {**meta, "object": "text_completion"}, num_prompt, request,
                               body.include_usage, choice, prepare):
        yield chunk


async def stream_chat(gen: Generation, body: ChatRequest, meta: dict[str, Any],
                      num_prompt: int, request: HTTPRequest, prepare: Prepare
                      ) -> AsyncIterator[str]:
    """/v1/chat/completions as SSE (the role first); `prepare` as in `stream_completion`."""
    mode, sent = gen.requests[0].params.parallel.mode, {}

    def choice(index: int, delta: str, finished: bool) -> dict[str, Any]:
        state = gen.choices[index]
        out = chat_delta(state, index, mode, delta, final=finished)
        if body.logprobs:
            content = chat_logprobs(state, body.num_top)["content"]
            out["logprobs"] = {"content": _unsent({"tokens": content}, sent, index)["tokens"],
                               "refusal": None}
        return out

    roles = [chat_delta(c, i, mode, None, final=False, first=True)
             for i, c in enumerate(gen.choices)]  # the role comes first, as OpenAI sends it
    async for chunk in _stream(gen, {**meta, "object": "chat.completion.chunk"}, num_prompt,
                               request, body.include_usage, choice, prepare, roles):
        yield chunk


async def _stream(gen: Generation, head: dict[str, Any], num_prompt: int, request: HTTPRequest,
                  include_usage: bool, choice: Any, prepare: Prepare,
                  preamble: list[dict] | None = None) -> AsyncIterator[str]:
    """SSE chunks of one generation: preamble choices, a chunk per delta, usage, [DONE].

    Deltas of a choice that are already queued when one is read merge into one chunk (vLLM
    merges them so too), so a client or a per-chunk scoring that is slower than the engine
    gets fewer, larger chunks instead of an ever longer backlog.
    """
    try:
        for first in preamble or []:
            yield sse({**head, "choices": [first]})
        pending: dict[int, tuple[str, bool]] = {}  # index -> (text, finished) not yet sent
        async for index, delta, finished in gen.deltas(request.is_disconnected, gen.stop):
            text, done = pending.get(index, ("", False))
            pending[index] = (text + delta, done or finished)
            if not gen.has_queued():
                async for chunk in _flush(pending, head, choice, prepare):
                    yield chunk
        async for chunk in _flush(pending, head, choice, prepare):
            yield chunk
        if include_usage:
            yield sse({**head, "choices": [], "usage": usage(gen.choices, num_prompt)})
        yield sse("[DONE]")
    except ClientGone:
        return
    except ShuttingDown as exc:
        yield sse(error_body(str(exc), "server_error", code="server_shutting_down"))
        yield sse("[DONE]")
    except RuntimeError as exc:
        yield sse(error_body(str(exc), "server_error"))
        yield sse("[DONE]")
    finally:
        gen.close()


async def _flush(pending: dict[int, tuple[str, bool]], head: dict[str, Any], choice: Any,
                 prepare: Prepare) -> AsyncIterator[str]:
    """One chunk per choice with text or a finish in `pending`, which is emptied."""
    for index, (text, finished) in list(pending.items()):
        if text or finished:
            await prepare(index, finished)
            yield sse({**head, "choices": [choice(index, text, finished)]})
    pending.clear()
