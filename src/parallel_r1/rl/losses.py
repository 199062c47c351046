"""Reference token-level policy losses: PPO-clip with clip-higher, three ways to average.

These are the numbers TRL 1.16's GRPOTrainer computes for loss_type grpo / dapo / dr_grpo on one
process with no gradient accumulation; tests/rl pin that equivalence, since our trainer relies on
TRL's loss. Each entry: `(logp, old_logp, adv, mask, **kw) -> (loss, metrics)`.
"""

from __future__ import annotations

import torch

from parallel_r1.registry import Registry

LOSSES: Registry = Registry("policy loss")


def clipped_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *,
                       eps_low: float = 0.2, eps_high: float = 0.2, beta: float = 0.0,
                       ref_logp: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token PPO-clip loss, plus beta * k3-KL to a reference when beta > 0.

    Args:
        logp: [B, T] current log-probs. old_logp: [B, T] behaviour log-probs.
        adv: [B] one advantage per completion (broadcast over its tokens).
        eps_low, eps_high: the clip range [1 - eps_low, 1 + eps_high] (clip-higher: eps_high > eps_low).
        beta: KL weight; ref_logp [B, T] is needed when beta > 0.
    Returns:
        (per-token loss [B, T], {"ratio": [B, T], "is_clipped": [B, T] bool, "kl": [B, T] or absent}).
    """
    ratio = torch.exp(logp - old_logp)  # [B, T]
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)  # [B, T]
    a = adv[:, None]  # [B, 1]
    loss = -torch.min(ratio * a, clipped * a)  # [B, T]
    parts = {"ratio": ratio, "is_clipped": (ratio * a) > (clipped * a)}
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp")
        kl = torch.exp(ref_logp - logp) - (ref_logp - logp) - 1  # [B, T] k3 estimator
        loss = loss + beta * kl
        parts["kl"] = kl
    return loss, parts


def aggregate(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str, *,
              max_completion_length: int | None = None) -> torch.Tensor:
    """Reduce a [B, T] token loss under mask [B, T] to a scalar.

    mode: "seq-mean-token-mean" (TRL grpo: mean over sequences of each one's token mean),
    "token-mean" (TRL dapo / bnpo, verl's default: one mean over all tokens),
    "seq-sum-norm" (TRL dr_grpo: token sum / (B * max_completion_length)).
    """
    mask = mask.to(loss_mat.dtype)  # [B, T]
    if mode == "seq-mean-token-mean":
        return ((loss_mat * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token-mean":
        return (loss_mat * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "seq-sum-norm":
        length = max_completion_length or loss_mat.size(1)
        return (loss_mat * mask).sum() / (loss_mat.size(0) * length)
    raise ValueError(f"unknown aggregation '{mode}'; known: seq-mean-token-mean, token-mean, "
                     "seq-sum-norm")


def _loss(mode: str):
    def fn(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
           eps_low: float = 0.2, eps_high: float = 0.2, beta: float = 0.0,
           ref_logp: torch.Tensor | None = None, max_completion_length: int | None = None
           ) -> tuple[torch.Tensor, dict[str, float]]:
        per_token, parts = clipped_token_loss(logp, old_logp, adv, eps_low=eps_low,
                                              eps_high=eps_high, beta=beta, ref_logp=ref_logp)
        loss = aggregate(per_token, mask, mode, max_completion_length=max_completion_length)
        m = mask.bool()  # [B, T]
        metrics = {"clip_ratio": parts["is_clipped"][m].float().mean().item() if m.any() else 0.0}
        if "kl" in parts:
            metrics["kl"] = parts["kl"][m].mean().item() if m.any() else 0.0
        return loss, metrics

    fn.__doc__ = (f"PPO-clip token loss averaged as '{mode}'.\n\n"
                  "Args: logp, old_logp [B, T]; adv [B]; mask [B, T] (1 = trained token).\n"
                  "Returns: (scalar loss, metrics).")
    return fn


LOSSES.add("grpo", _loss("seq-mean-token-mean"))
LOSSES.add("dapo", _loss("token-mean"))
LOSSES.add("dr_grpo", _loss("seq-sum-norm"))


def policy_loss(name: str, logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                mask: torch.Tensor, **kw) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss by name ("grpo", "dapo", "dr_grpo"); unknown names list the known ones."""
    return LOSSES.get(name)(logp, old_logp, adv, mask, **kw)
