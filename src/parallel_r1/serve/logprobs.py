"""The `logprobs` of a response: every token with its log-prob and, when asked, its likeliest
alternatives; with `echo`, the prompt's tokens first. Shapes as vLLM's OpenAI server gives them.

A generated token's own log-prob is the engine's (the one it sampled with); prompt tokens and the
alternatives come from one scoring forward (`scoring.Scores`, kept on the choice). Where a
token is among its own alternatives it carries the engine's value there too, so
`token_logprobs[i] == top_logprobs[i][tokens[i]]` holds exactly (lm-eval's greedy check). The
first prompt token has nothing before it: its log-prob and alternatives are null, as in vLLM.
"""

from __future__ import annotations

from typing import Any

from parallel_r1.serve.choice import ChoiceState, pieces, token_bytes


def prompt_text(choice: ChoiceState) -> str:
    """The prompt as the echoed text: its tokens decoded one after another (they join to it)."""
    return "".join(p[0] for p in pieces(choice.spec.tokenizer, choice.spec.prompt_ids))


def completion_logprobs(choice: ChoiceState, *, num_top: int = 0, echo: bool = False,
                        ids_as_tokens: bool = False) -> dict[str, Any]:
    """Legacy completions log-probs: {tokens, token_logprobs, top_logprobs, text_offset}.

    Args:
        num_top: alternatives per token besides the token itself (`logprobs`).
        echo: the prompt's tokens first (their scores must be on the choice).
        ids_as_tokens: tokens and alternatives written 'token_id:N', and every generated token
            listed, the stop token included (vLLM's return_tokens_as_token_ids).
    """
    tok, prompt = choice.spec.tokenizer, choice.spec.prompt_ids
    rows = []  # (token text, id, log-prob, position in the scored sequence)
    if echo:
        scored = choice.scores.logprobs if choice.scores is not None else [None] * len(prompt)
        rows += [(p[0], t, scored[i], i)
                 for i, (p, t) in enumerate(zip(pieces(tok, prompt), prompt))]
    if ids_as_tokens:
        rows += [(tok.decode([t], skip_special_tokens=False), t, lp, len(prompt) + i)
                 for i, (t, lp) in enumerate(zip(choice.ids, choice.logprobs))]
    else:
        texts, logprobs, _, _ = choice.token_pieces()
        rows += [(text, choice.ids[i], lp, len(prompt) + i)
                 for i, (text, lp) in enumerate(zip(texts, logprobs))]

    def name(text: str, token_id: int) -> str:
        return f"token_id:{token_id}" if ids_as_tokens else text

    tokens, values, tops, offsets, at = [], [], [], [], 0
    for text, token_id, logprob, pos in rows:
        tokens.append(name(text, token_id))
        values.append(logprob)
        offsets.append(at)
        at += len(text)
        if logprob is None:
            tops.append(None)
            continue
        top = {name(tok.decode([a], skip_special_tokens=False), a): v
               for a, v in alternatives(choice, pos, num_top, token_id, logprob)}
        top[name(text, token_id)] = logprob  # last: wins over an alternative with its text
        tops.append(top)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops,
            "text_offset": offsets}


def chat_logprobs(choice: ChoiceState, num_top: int = 0) -> dict[str, Any]:
    """Chat log-probs: per generated token {token, logprob, bytes, top_logprobs[num_top]}."""
    tok, start = choice.spec.tokenizer, len(choice.spec.prompt_ids)
    texts, logprobs, _, raw = choice.token_pieces()
    content = []
    for i, (text, logprob, data) in enumerate(zip(texts, logprobs, raw)):
        alts = alternatives(choice, start + i, num_top, choice.ids[i], logprob)
        ids = [a for a, _ in alts]
        top = [{"token": tok.decode([a], skip_special_tokens=False), "logprob": v,
                "bytes": list(b)} for (a, v), b in zip(alts, token_bytes(tok, ids))]
        content.append({"token": text, "logprob": logprob, "bytes": list(data),
                        "top_logprobs": top})
    return {"content": content, "refusal": None}


def prompt_logprobs(choice: ChoiceState, num_top: int) -> list[dict[str, Any] | None]:
    """vLLM's `prompt_logprobs`: per prompt token, None for the first, else {token id: {logprob,
    rank, decoded_token}} for the token and its `num_top` likeliest alternatives."""
    tok, scores, out = choice.spec.tokenizer, choice.scores, []
    for i, token_id in enumerate(choice.spec.prompt_ids):
        if scores is None or scores.logprobs[i] is None:
            out.append(None)
            continue
        entry = {str(a): {"logprob": v, "rank": r + 1,
                          "decoded_token": tok.decode([a], skip_special_tokens=False)}
                 for r, (a, v) in enumerate(scores.top[i][:num_top])}
        entry[str(token_id)] = {"logprob": scores.logprobs[i], "rank": scores.ranks[i],
                                "decoded_token": tok.decode([token_id],
                                                            skip_special_tokens=False)}
        out.append(entry)
    return out


def alternatives(choice: ChoiceState, pos: int, num_top: int, token_id: int,
                 logprob: float | None) -> list[tuple[int, float]]:
    """The `num_top` likeliest (id, log-prob) at scored position `pos`, the token itself with
    its reported `logprob` ([] when nothing was scored)."""
    scores = choice.scores
    if not num_top or scores is None or pos >= len(scores.top):
        return []
    return [(a, logprob if a == token_id and logprob is not None else v)
            for a, v in scores.top[pos][:num_top]]
