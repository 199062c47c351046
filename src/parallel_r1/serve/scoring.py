"""Log-probs of given tokens (an echoed prompt, a finished choice) and the likeliest tokens at
each position: what `echo`, `logprobs: k`, `top_logprobs` and `prompt_logprobs` report.

One forward over the whole sequence, as the trainer runs it: a plain causal forward in the
causal layout, else the packed sequence of `structure.batch_packed` (positions and mask of the
layout), read at each token's predictor column. The arithmetic is the sampler's
(`engine.sampler.sample`): logits promoted to at least float32, divided by the temperature
(1 when greedy), log-softmax; so a prompt token's log-prob is the trainer's, and a generated
token's equals the engine's up to float rounding of the two forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from parallel_r1.structure import batch_packed

CHUNK = 256  # positions log-softmaxed at once (bounds the float32 copy of [T, V] logits)


@dataclass
class Scores:
    """Per position of a scored sequence; lists are [T]. Position 0 has no predictor: None."""

    logprobs: list[float | None]  # of the token there, given the tokens before it
    ranks: list[int | None]  # 1 + how many tokens were likelier there
    top: list[list[tuple[int, float]]]  # the `num_top` likeliest (id, log-prob), likeliest first


@torch.inference_mode()
def score(model: Any, ids: list[int], start: int, *, tags: Any, layout: str, temperature: float,
          num_top: int) -> Scores:
    """Score every token of `ids` (prompt then completion) with one forward of `model`.

    Args:
        model: the HF causal LM (its own device and dtype).
        ids: [T] prompt + completion token ids.
        start: where the completion starts (its layout applies from there).
        tags: the tokenizer's TagIds, or None (then the causal layout is used).
        layout: causal | structured | threads.
        temperature: the request's; 0 (greedy) scores the raw distribution, as the engine does.
        num_top: likeliest tokens kept per position (0: none).

    Returns:
        Scores over the T positions.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    seq = torch.tensor([ids])  # [1, T]
    if layout == "causal" or tags is None:
        logits = model(input_ids=seq.to(device)).logits[0]  # [T, V]
        predictor = torch.arange(-1, len(ids) - 1)  # [T]
    else:
        batch = batch_packed(seq, torch.ones_like(seq), tags, start, layout=layout, dtype=dtype)
        logits = model(input_ids=batch.input_ids.to(device),
                       position_ids=batch.position_ids.to(device),
                       attention_mask=batch.attention_mask.to(device)).logits[0]  # [T', V]
        predictor = batch.predictor[0]  # [T]
    out = Scores([None] * len(ids), [None] * len(ids), [[] for _ in ids])
    where = (predictor >= 0).nonzero().flatten()  # [N] positions with a predictor
    targets = seq[0].to(device)
    for lo in range(0, len(where), CHUNK):
        pos = where[lo:lo + CHUNK]  # [C]
        work = logits[predictor[pos].to(device)]  # [C, V]
        work = work.to(torch.promote_types(work.dtype, torch.float32))
        if temperature > 0 and temperature != 1:
            work = work / torch.tensor(temperature, dtype=work.dtype)
        logp = work.log_softmax(dim=-1)  # [C, V]
        own = logp.gather(1, targets[pos.to(device)][:, None])  # [C, 1]
        ranks = (logp > own).sum(dim=-1) + 1  # [C]
        values, top_ids = logp.topk(num_top, dim=-1) if num_top else (logp[:, :0],) * 2
        own, ranks = own[:, 0].tolist(), ranks.tolist()
        values, top_ids = values.tolist(), top_ids.tolist()
        for i, p in enumerate(pos.tolist()):
            out.logprobs[p], out.ranks[p] = own[i], ranks[i]
            out.top[p] = list(zip(top_ids[i], values[i]))
    return out
