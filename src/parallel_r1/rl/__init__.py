"""Pure RL maths: group advantages, dynamic-sampling filters and reference policy losses.

Tensors in, `(value, metrics)` out; each choice a user makes by name is a registry entry.
Imports torch only (never transformers, TRL or accelerate).
"""

from parallel_r1.rl.advantages import ADVANTAGES, group_advantages
from parallel_r1.rl.filtering import dynamic_sampling_mask, equal_reward_groups, malformed_mask
from parallel_r1.rl.losses import LOSSES, aggregate, clipped_token_loss, policy_loss

__all__ = ["ADVANTAGES", "LOSSES", "aggregate", "clipped_token_loss", "dynamic_sampling_mask",
           "equal_reward_groups", "group_advantages", "malformed_mask", "policy_loss"]
