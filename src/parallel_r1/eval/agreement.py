"""How far an engine's sampling log-probs are from the trainer's, on the engine's own samples.

The trainer side is the forward `train.grpo` runs: one pass over the rollout's packed sequence
(`structure.batch_packed`, the layout's mask and positions), read at each token's predictor.
Only tokens the engine sampled (loss mask 1) and scored (not NaN) count. Used to put any backend
(the built-in engine, vLLM, a server) side by side on the same footing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from parallel_r1.structure import batch_packed


@torch.no_grad()
def trainer_logprobs(model: Any, tags: Any, rollout: Any, layout: str) -> torch.Tensor:
    """The trainer's log-prob of every completion token of `rollout` [T_c], in float64.

    Args:
        model: the HF causal LM (its own dtype and device).
        tags: the tokenizer's `format.tags.TagIds`.
        layout: causal | structured | threads (the rollout's).
    """
    device = next(model.parameters()).device
    start = len(rollout.prompt_ids)
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids])  # [1, T]
    batch = batch_packed(ids, torch.ones_like(ids), tags, start, layout=layout,
                         dtype=next(model.parameters()).dtype)
    logits = model(input_ids=batch.input_ids.to(device),
                   position_ids=batch.position_ids.to(device),
                   attention_mask=batch.attention_mask.to(device)).logits[0]  # [T', V]
    logp = logits.double().log_softmax(-1)[batch.predictor[0, start:].to(device)]  # [T_c, V]
    return logp.gather(-1, torch.tensor(rollout.completion_ids, device=device)[:, None])[:, 0].cpu()


def logprob_deltas(model: Any, tags: Any, rollouts: Sequence[Any], layout: str) -> torch.Tensor:
    """|engine log-prob - trainer log-prob| [N] over the sampled, scored tokens of `rollouts`."""
    deltas = []
    for r in rollouts:
        engine = torch.tensor([float("nan") if x is None else x for x in r.logprobs],
                              dtype=torch.float64)  # [T_c]
        delta = (trainer_logprobs(model, tags, r, layout) - engine).abs()
        keep = torch.tensor(r.loss_mask, dtype=torch.bool) & ~torch.isnan(delta)
        deltas.append(delta[keep])
    return torch.cat(deltas) if deltas else torch.zeros(0, dtype=torch.float64)


def agreement(model: Any, tags: Any, rollouts: Sequence[Any], layout: str) -> dict[str, float]:
    """max, p99 and mean of `logprob_deltas`, with the token and block counts behind them."""
    delta = logprob_deltas(model, tags, rollouts, layout)
    empty = not delta.numel()
    return {"tokens": int(delta.numel()),
            "blocks": int(sum(r.num_blocks for r in rollouts)),
            "max": float("nan") if empty else delta.max().item(),
            "p99": float("nan") if empty else torch.quantile(delta, 0.99).item(),
            "mean": float("nan") if empty else delta.mean().item()}
