"""Which completions enter the loss: DAPO dynamic sampling, and dropping malformed rollouts.

DAPO (arXiv 2503.14476) drops every group whose rewards are all equal: its advantages are zero,
so it only dilutes the token-mean. NPR drops malformed rollouts instead of scoring them.
All functions return `(keep [B] bool, metrics)` over prompt-major rows.
"""

from __future__ import annotations

import torch


def equal_reward_groups(rewards: torch.Tensor, group_size: int, *, atol: float = 1e-6
                        ) -> torch.Tensor:
    """[B/G] True for each group whose G rewards are all equal (within `atol`).

    Raises:
        ValueError: rewards is not [B] with B a multiple of G.
    """
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be [B] with B a multiple of group_size={group_size}")
    grouped = rewards.float().view(-1, group_size)  # [B/G, G]
    spread = grouped.max(dim=1).values - grouped.min(dim=1).values  # [B/G]
    return spread <= atol


def dynamic_sampling_mask(rewards: torch.Tensor, group_size: int, *, atol: float = 1e-6
                          ) -> tuple[torch.Tensor, dict[str, float]]:
    """DAPO dynamic sampling: keep the rows of groups whose rewards are not all equal.

    Args:
        rewards: [B] prompt-major. group_size: G.
    Returns:
        (keep [B] bool, {"filter/dropped_groups": share of groups dropped}).
    """
    equal = equal_reward_groups(rewards, group_size, atol=atol)  # [B/G]
    keep = (~equal).repeat_interleave(group_size)  # [B]
    return keep, {"filter/dropped_groups": equal.float().mean().item() if equal.numel() else 0.0}


def malformed_mask(is_valid: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """NPR's rule: keep only well-formed rollouts.

    Args:
        is_valid: [B] bool, the format check of each completion.
    Returns:
        (keep [B] bool, {"filter/dropped_malformed": share dropped}).
    """
    keep = is_valid.bool()  # [B]
    dropped = (~keep).float().mean().item() if keep.numel() else 0.0
    return keep, {"filter/dropped_malformed": dropped}
