"""Group-relative advantages: one scalar per completion from the rewards of its group.

Rows are prompt-major: rows g*G .. g*G+G-1 are the G completions of prompt g (the order the
engine and TRL use). Each estimator is `(rewards [B], group_size, **kw) -> (adv [B], metrics)`.
"""

from __future__ import annotations

import torch

from parallel_r1.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be [B] with B a multiple of group_size={group_size}, "
                         f"got shape {tuple(rewards.shape)}")
    return rewards.view(-1, group_size)  # [B/G, G]


def _metrics(grouped: torch.Tensor) -> dict[str, float]:
    std = grouped.std(dim=1) if grouped.size(1) > 1 else torch.zeros(grouped.size(0))  # [B/G]
    return {"reward/mean": grouped.mean().item(), "reward/group_std": std.mean().item(),
            "frac_zero_std_groups": (std == 0).float().mean().item()}


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
    grouped = _groups(rewards.float(), group_size)  # [B/G, G]
    mean = grouped.mean(dim=1, keepdim=True)  # [B/G, 1]
    std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    adv = (grouped - mean) / (std + eps)  # [B/G, G]
    return adv.flatten(), _metrics(grouped)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor, group_size: int, **_: float
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    """Dr. GRPO: r - mean_group, no std scaling (TRL's scale_rewards="none").

    Args:
        rewards: [B] prompt-major. group_size: G.
    Returns:
        (advantages [B], metrics).
    """
    grouped = _groups(rewards.float(), group_size)  # [B/G, G]
    return (grouped - grouped.mean(dim=1, keepdim=True)).flatten(), _metrics(grouped)


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
    grouped = _groups(rewards.float(), group_size)  # [B/G, G]
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # [B/G, G]
    return (grouped - others).flatten(), _metrics(grouped)


def group_advantages(name: str, rewards: torch.Tensor, group_size: int, **kw: float
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantages by estimator name ("grpo", "dr_grpo", "rloo"); unknown names list the known."""
    return ADVANTAGES.get(name)(rewards, group_size, **kw)
