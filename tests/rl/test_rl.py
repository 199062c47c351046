"""Pure RL maths: hand cases and loop-vs-vectorised references."""

from __future__ import annotations

import pytest
import torch

from parallel_r1.errors import UnknownNameError
from parallel_r1.rl import (
    ADVANTAGES,
    LOSSES,
    aggregate,
    dynamic_sampling_mask,
    group_advantages,
    malformed_mask,
    policy_loss,
)


def test_grpo_advantages_by_hand():
    rewards = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0, 2.0, 2.0, 2.0])
    adv, metrics = group_advantages("grpo", rewards, 4, eps=0.0)
    std = torch.tensor([1.0, -1.0, 1.0, -1.0]).std()
    assert torch.allclose(adv[:4], torch.tensor([1.0, -1.0, 1.0, -1.0]) / std)
    adv, metrics = group_advantages("grpo", rewards, 4)
    assert (adv[4:] == 0).all() and metrics["frac_zero_std_groups"] == 0.5


def test_advantages_match_a_loop():
    torch.manual_seed(0)
    rewards = torch.randn(12)
    for name in ADVANTAGES.names():
        adv, _ = group_advantages(name, rewards, 3)
        for g in range(4):
            r = rewards[3 * g: 3 * g + 3]
            for i in range(3):
                if name == "grpo":
                    want = (r[i] - r.mean()) / (r.std() + 1e-4)
                elif name == "dr_grpo":
                    want = r[i] - r.mean()
                else:
                    want = r[i] - (r.sum() - r[i]) / 2
                assert torch.isclose(adv[3 * g + i], want, atol=1e-6), name


def test_unknown_names_list_the_known():
    with pytest.raises(UnknownNameError, match="dr_grpo"):
        group_advantages("ppo", torch.zeros(4), 2)
    with pytest.raises(UnknownNameError, match="dapo"):
        policy_loss("nope", *(torch.zeros(1, 1),) * 2, torch.zeros(1), torch.ones(1, 1))
    with pytest.raises(ValueError):
        group_advantages("grpo", torch.zeros(5), 2)


def test_dynamic_sampling_and_malformed():
    keep, m = dynamic_sampling_mask(torch.tensor([1.0, 1.0, -1.0, 1.0, 0.0, 0.0]), 2)
    assert keep.tolist() == [False, False, True, True, False, False]
    assert m["filter/dropped_groups"] == pytest.approx(2 / 3)
    keep, m = malformed_mask(torch.tensor([True, False, True, True]))
    assert keep.tolist() == [True, False, True, True] and m["filter/dropped_malformed"] == 0.25


def test_clip_higher_and_aggregations():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))  # ratios 1.5, 0.5, 1 against old = 0
    old = torch.zeros(1, 3)
    mask = torch.tensor([[1, 1, 0]])
    pos, _ = policy_loss("dapo", logp, old, torch.tensor([1.0]), mask, eps_low=0.2, eps_high=0.28)
    assert pos.item() == pytest.approx(-(1.28 + 0.5) / 2)  # 1.5 clipped at 1 + 0.28
    neg, _ = policy_loss("dapo", logp, old, torch.tensor([-1.0]), mask, eps_low=0.2, eps_high=0.28)
    assert neg.item() == pytest.approx((1.5 + 0.8) / 2)  # 0.5 clipped at 1 - 0.2
    loss = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])
    m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert aggregate(loss, m, "seq-mean-token-mean").item() == pytest.approx((1.5 + 3) / 2)
    assert aggregate(loss, m, "token-mean").item() == pytest.approx(6 / 3)
    assert aggregate(loss, m, "seq-sum-norm", max_completion_length=4).item() == \
        pytest.approx(6 / 8)
    assert set(LOSSES.names()) == {"grpo", "dapo", "dr_grpo"}


def test_kl_term():
    logp = torch.zeros(1, 2)
    ref = torch.log(torch.tensor([[2.0, 1.0]]))
    loss, m = policy_loss("dapo", logp, logp, torch.zeros(1), torch.ones(1, 2), beta=0.5,
                          ref_logp=ref)
    kl = (2 - torch.log(torch.tensor(2.0)) - 1) / 2  # k3 at ratio 2, 0 at ratio 1, averaged
    assert loss.item() == pytest.approx(0.5 * kl.item()) and m["kl"] == pytest.approx(kl.item())
