"""The OpenAI JSON shapes: choices, usage, stream chunks and errors (plain dicts, no web stack).

Each choice carries an extra `parallel` field (parsed blocks and paths, tokens, sequential
depth), and `usage` adds `sequential_depth`: the longest critical path among the choices, the
number of tokens a reader of the slowest choice had to wait for one after another.
"""

from __future__ import annotations

import json
from typing import Any

from parallel_r1.serve.choice import ChoiceState
from parallel_r1.serve.logprobs import (
    chat_logprobs,
    completion_logprobs,
    prompt_logprobs,
    prompt_text,
)


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: {"error": {message, type, param, code}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def usage(choices: list[ChoiceState], num_prompt_tokens: int) -> dict[str, int]:
    """Token counts over all choices; sequential_depth is the largest depth of one choice."""
    completion = sum(len(c.ids) for c in choices)
    return {"prompt_tokens": num_prompt_tokens, "completion_tokens": completion,
            "total_tokens": num_prompt_tokens + completion,
            "sequential_depth": max((c.depth or 0 for c in choices), default=0)}


def completion_choice(choice: ChoiceState, index: int, mode: str, *, logprobs: bool,
                      num_top: int = 0, echo: bool = False, num_prompt_top: int | None = None,
                      text: str | None = None, final: bool = True, token_ids: bool = False,
                      ids_as_tokens: bool = False) -> dict[str, Any]:
    """A /v1/completions choice (whole, or one streamed piece when `text` is given).

    `num_top` alternatives per token in `logprobs`; `echo`: the prompt first in the text and
    log-probs; `num_prompt_top`: vLLM's `prompt_logprobs` with that many alternatives;
    `token_ids`: vLLM's `token_ids` and `prompt_token_ids`.
    """
    if text is None:
        text = prompt_text(choice) + choice.text if echo else choice.text
    body: dict[str, Any] = {"index": index, "text": text, "logprobs": None,
                            "finish_reason": None}
    if final:
        body["finish_reason"] = choice.finish_reason
        if logprobs:
            body["logprobs"] = completion_logprobs(choice, num_top=num_top, echo=echo,
                                                   ids_as_tokens=ids_as_tokens)
        if num_prompt_top is not None:
            body["prompt_logprobs"] = prompt_logprobs(choice, num_prompt_top)
        body["parallel"] = choice.parallel_info(mode)
    if final and token_ids:
        body["token_ids"] = list(choice.ids)
        body["prompt_token_ids"] = list(choice.spec.prompt_ids)
    return body


def chat_choice(choice: ChoiceState, index: int, mode: str, *, logprobs: bool,
                num_top: int = 0) -> dict[str, Any]:
    """A whole /v1/chat/completions choice (`num_top` alternatives per token)."""
    return {"index": index, "message": {"role": "assistant", "content": choice.text},
            "logprobs": chat_logprobs(choice, num_top) if logprobs else None,
            "finish_reason": choice.finish_reason, "parallel": choice.parallel_info(mode)}


def chat_delta(choice: ChoiceState, index: int, mode: str, text: str | None, *, final: bool,
               first: bool = False) -> dict[str, Any]:
    """One streamed chat choice: the role first, then content; the last adds the extras (the
    stream sets each chunk's `logprobs`)."""
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
    if text:
        delta["content"] = text
    body: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None,
                            "finish_reason": None}
    if final:
        body["finish_reason"] = choice.finish_reason
        body["parallel"] = choice.parallel_info(mode)
    return body


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event line pair."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
