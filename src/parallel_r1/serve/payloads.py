"""The OpenAI JSON shapes: choices, usage, stream chunks and errors (plain dicts, no web stack).

Each choice carries an extra `parallel` field (parsed blocks and paths, tokens, sequential
depth), and `usage` adds `sequential_depth`: the longest critical path among the choices, the
number of tokens a reader of the slowest choice had to wait for one after another.
"""

from __future__ import annotations

import json
from typing import Any

from parallel_r1.serve.choice import ChoiceState


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


def completion_logprobs(choice: ChoiceState) -> dict[str, Any]:
    """Legacy completions log-probs: sampled tokens only (`top_logprobs` entries are null)."""
    tokens, logprobs, offsets, _ = choice.token_pieces()
    return {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": [None] * len(tokens),
            "text_offset": offsets}


def chat_logprobs(choice: ChoiceState) -> dict[str, Any]:
    """Chat log-probs: one entry per sampled token, no alternatives."""
    tokens, logprobs, _, raw = choice.token_pieces()
    return {"content": [{"token": t, "logprob": lp, "bytes": list(b), "top_logprobs": []}
                        for t, lp, b in zip(tokens, logprobs, raw)],
            "refusal": None}


def token_id_logprobs(choice: ChoiceState) -> dict[str, Any]:
    """Log-probs of every generated token, the tokens written 'token_id:N' (vLLM's
    return_tokens_as_token_ids): the stop token included, text offsets of the decoded pieces."""
    tokenizer, offsets, pos = choice.spec.tokenizer, [], 0
    for token_id in choice.ids:
        offsets.append(pos)
        pos += len(tokenizer.decode([token_id], skip_special_tokens=False))
    return {"tokens": [f"token_id:{t}" for t in choice.ids],
            "token_logprobs": list(choice.logprobs), "top_logprobs": [None] * len(choice.ids),
            "text_offset": offsets}


def completion_choice(choice: ChoiceState, index: int, mode: str, *, logprobs: bool,
                      text: str | None = None, final: bool = True, token_ids: bool = False,
                      ids_as_tokens: bool = False) -> dict[str, Any]:
    """A /v1/completions choice (whole, or one streamed piece when `text` is given); with
    `token_ids` it carries vLLM's `token_ids` and `prompt_token_ids`."""
    body: dict[str, Any] = {"index": index, "text": choice.text if text is None else text,
                            "logprobs": None, "finish_reason": None}
    if final:
        body["finish_reason"] = choice.finish_reason
        if logprobs:
            body["logprobs"] = token_id_logprobs(choice) if ids_as_tokens else \
                completion_logprobs(choice)
        body["parallel"] = choice.parallel_info(mode)
    if final and token_ids:
        body["token_ids"] = list(choice.ids)
        body["prompt_token_ids"] = list(choice.spec.prompt_ids)
    return body


def chat_choice(choice: ChoiceState, index: int, mode: str, *, logprobs: bool) -> dict[str, Any]:
    """A whole /v1/chat/completions choice."""
    return {"index": index, "message": {"role": "assistant", "content": choice.text},
            "logprobs": chat_logprobs(choice) if logprobs else None,
            "finish_reason": choice.finish_reason, "parallel": choice.parallel_info(mode)}


def chat_delta(choice: ChoiceState, index: int, mode: str, text: str | None, *, logprobs: bool,
               final: bool, first: bool = False) -> dict[str, Any]:
    """One streamed chat choice: the role first, then content; the last adds the extras."""
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
    if text:
        delta["content"] = text
    body: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None,
                            "finish_reason": None}
    if final:
        body["finish_reason"] = choice.finish_reason
        body["logprobs"] = chat_logprobs(choice) if logprobs else None
        body["parallel"] = choice.parallel_info(mode)
    return body


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event line pair."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
