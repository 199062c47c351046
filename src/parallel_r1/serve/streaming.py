"""Server-sent events of one generation: a chunk per text delta, the extras with each choice's
last chunk, usage when asked, then `[DONE]`; errors after the first byte end the stream with an
error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request as HTTPRequest

from parallel_r1.serve.generation import ClientGone, Generation, ShuttingDown
from parallel_r1.serve.logprobs import prompt_text
from parallel_r1.serve.payloads import chat_delta, completion_choice, error_body, sse, usage
from parallel_r1.serve.schemas import ChatRequest, CompletionRequest

Finish = Callable[[int], Awaitable[None]]  # called before a choice's last chunk (scores it)


async def stream_completion(gen: Generation, body: CompletionRequest, meta: dict[str, Any],
                            num_prompt: int, request: HTTPRequest, finish: Finish
                            ) -> AsyncIterator[str]:
    """/v1/completions as SSE; `finish(index)` runs before a choice's last chunk."""
    mode, echoed = gen.requests[0].params.parallel.mode, set()

    def choice(index: int, delta: str, finished: bool) -> dict[str, Any]:
        if body.echo and index not in echoed:  # the prompt comes first, in the choice's first chunk
            echoed.add(index)
            delta = prompt_text(gen.choices[index]) + delta
        return completion_choice(gen.choices[index], index, mode, logprobs=body.wants_logprobs,
                                 num_top=body.num_top, echo=body.echo, text=delta,
                                 final=finished)

    async for chunk in _stream(gen, {**meta, "object": "text_completion"}, num_prompt, request,
                               body.include_usage, choice, finish):
        yield chunk


async def stream_chat(gen: Generation, body: ChatRequest, meta: dict[str, Any],
                      num_prompt: int, request: HTTPRequest, finish: Finish
                      ) -> AsyncIterator[str]:
    """/v1/chat/completions as SSE (the role first); `finish` as in `stream_completion`."""
    mode = gen.requests[0].params.parallel.mode

    def choice(index: int, delta: str, finished: bool) -> dict[str, Any]:
        return chat_delta(gen.choices[index], index, mode, delta, logprobs=body.logprobs,
                          final=finished, num_top=body.num_top)

    roles = [chat_delta(c, i, mode, None, logprobs=False, final=False, first=True)
             for i, c in enumerate(gen.choices)]  # the role comes first, as OpenAI sends it
    async for chunk in _stream(gen, {**meta, "object": "chat.completion.chunk"}, num_prompt,
                               request, body.include_usage, choice, finish, roles):
        yield chunk


async def _stream(gen: Generation, head: dict[str, Any], num_prompt: int, request: HTTPRequest,
                  include_usage: bool, choice: Any, finish: Finish,
                  preamble: list[dict] | None = None) -> AsyncIterator[str]:
    """SSE chunks of one generation: preamble choices, a chunk per delta, usage, [DONE]."""
    try:
        for first in preamble or []:
            yield sse({**head, "choices": [first]})
        async for index, delta, finished in gen.deltas(request.is_disconnected, gen.stop):
            if finished:
                await finish(index)
            if delta or finished:
                yield sse({**head, "choices": [choice(index, delta, finished)]})
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
