"""Group-relative advantages: one scalar per completion from the rewards of its group.

Rows are prompt-major: rows g*G .. g*G+G-1 are the G completions of prompt g (the order the
engine and TRL use). Each estimator is `(rewards [B], group_size, **kw) -> (adv [B], metrics)`.

A group whose rewards are all equal carries no signal: its advantages are exactly 0 and it
counts in `frac_zero_std_groups`. Computed naively in float32 they are not: the mean of eight
1.2 rewards is 1.1999999 (1.2 has no exact binary form), the std 1.3e-7, and (r - mean) /
(std + 1e-4) gives +0.0012 for every completion. So statistics are taken in float64 and tied
groups (max == min) are set to 0 explicitly.
"""

from __future__ import annotations

import torch

from parallel_r1.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be [B] with B a multiple of group_size={group_size}, "
                         f"got shape {tuple(rewards.shape)}")
    return rewards.double().view(-1, group_size)  # [B/G, G] float64


def tied_groups(grouped: torch.Tensor) -> torch.Tensor:
    """[B/G] True for each group (row of `grouped` [B/G, G]) whose rewards are all equal."""
    return grouped.max(dim=1).values == grouped.min(dim=1).values  # [B/G]


def _std(grouped: torch.Tensor) -> torch.Tensor:
    """Unbiased std per group [B/G], exactly 0 for tied groups (and for G = 1)."""
    if grouped.size(1) == 1:
        return torch.zeros(grouped.size(0), dtype=grouped.dtype)
    return grouped.std(dim=1).masked_fill(tied_groups(grouped), 0.0)  # [B/G]


def _finish(adv: torch.Tensor, grouped: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Zero tied groups' advantages [B/G, G], flatten to float32 [B], and the metrics."""
    adv = adv.masked_fill(tied_groups(grouped).unsqueeze(1), 0.0)  # [B/G, G]
    std = _std(grouped)  # [B/G]
    metrics = {"reward/mean": grouped.mean().item(), "reward/group_std": std.mean().item(),
               "frac_zero_std_groups": tied_groups(grouped).double().mean().item()}
    return adv.flatten().float(), metrics


@ADVANTAGES.register("grpo")
def grpo_advantages(rewards: torch.Tensor, group_size: int, *, eps: float = 1e-4
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: (r - mean_group) / (std_group + eps), std unbiased (TRL and verl; verl uses 1e-6).

    Args:
        rewards: [B] one reward per completion, prompt-major.
        group_size: G, completions per prompt.
        eps: added to the std (TRL 1e-4).
    Returns:
        (advantages [B], metrics).
    Raises:
        ValueError: B is not a multiple of G.
    """
    grouped = _groups(rewards, group_size)  # [B/G, G]
    mean = grouped.mean(dim=1, keepdim=True)  # [B/G, 1]
    adv = (grouped - mean) / (_std(grouped).unsqueeze(1) + eps)  # [B/G, G]
    return _finish(adv, grouped)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor, group_size: int, **_: float
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    """Dr. GRPO: r - mean_group, no std scaling (TRL's scale_rewards="none").

    Args:
        rewards: [B] prompt-major. group_size: G.
    Returns:
        (advantages [B], metrics).
    """
    grouped = _groups(rewards, group_size)  # [B/G, G]
    return _finish(grouped - grouped.mean(dim=1, keepdim=True), grouped)


@ADVANTAGES.register("rloo")
def rloo_advantages(rewards: torch.Tensor, group_size: int, **_: float
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """RLOO: r_i minus the mean of the other G-1 rewards of its group (needs G >= 2).

    Args:
        rewards: [B] prompt-major. group_size: G >= 2.
    Returns:
        (advantages [B], metrics).
    """
    if group_size < 2:
        raise ValueError("rloo needs group_size >= 2")
    grouped = _groups(rewards, group_size)  # [B/G, G]
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # [B/G, G]
    return _finish(grouped - others, grouped)


def group_advantages(name: str, rewards: torch.Tensor, group_size: int, **kw: float
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantages by estimator name ("grpo", "dr_grpo", "rloo"); unknown names list the known."""
    return ADVANTAGES.get(name)(rewards, group_size, **kw)
