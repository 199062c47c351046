"""Logits -> sampled token ids and their log-probs, row by row reproducible from a seed.

Each row has its own torch.Generator, so a sample's tokens depend on its seed alone, never on
which other rows share the batch. Sampling is Gumbel-max over the filtered distribution, which
draws exactly from softmax(filtered logits / T).
"""

from __future__ import annotations

from typing import Sequence

import torch

_NEG_INF = float("-inf")


def filter_logits(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask everything outside each row's top-k and top-p nucleus with -inf.

    Args:
        scaled: [B, V] logits already divided by temperature.
        top_k: [B] long, 0 = off.
        top_p: [B] float, 1.0 = off.
    """
    if not bool((top_k > 0).any() or (top_p < 1).any()):
        return scaled
    sorted_logits, order = scaled.sort(dim=-1, descending=True)  # [B, V]
    vocab = scaled.shape[-1]
    ranks = torch.arange(vocab, device=scaled.device)[None]  # [1, V]
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab))  # [B]
    drop = ranks >= k[:, None]  # [B, V]
    probs = sorted_logits.softmax(dim=-1)  # [B, V]
    before = probs.cumsum(dim=-1) - probs  # [B, V] mass strictly before each token
    drop |= before >= top_p[:, None]  # keeps the smallest prefix with mass >= top_p
    drop[:, 0] = False  # the most likely token always survives
    sorted_logits = sorted_logits.masked_fill(drop, _NEG_INF)
    return torch.empty_like(scaled).scatter_(-1, order, sorted_logits)


def sample(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor,
           top_p: torch.Tensor, generators: Sequence[torch.Generator]
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row.

    Args:
        logits: [B, V] raw logits (float32).
        temperature: [B]; 0 = greedy.
        top_k: [B] long; top_p: [B] float.
        generators: one per row (CPU generators).

    Returns:
        ids [B] and logp [B, V] = log_softmax(logits / T) (log_softmax(logits) for greedy rows),
        unfiltered: the distribution a trainer recomputes.
    """
    greedy = temperature <= 0  # [B]
    temp = torch.where(greedy, torch.ones_like(temperature), temperature)  # [B]
    scaled = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32
    scaled = scaled / temp.to(scaled.dtype)[:, None]  # [B, V]
    logp = scaled.log_softmax(dim=-1)  # [B, V]
    filtered = filter_logits(scaled, top_k, top_p)  # [B, V]
    noise = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in generators])  # [B, V]
    exp_noise = (-noise.clamp_min(1e-20).log()).clamp_min(1e-20)  # [B, V] Exp(1) draws
    gumbel = -exp_noise.log()  # [B, V] Gumbel(0, 1)
    drawn = (filtered + gumbel.to(filtered.device)).argmax(dim=-1)  # [B]
    ids = torch.where(greedy.to(drawn.device), scaled.argmax(dim=-1), drawn)  # [B]
    return ids, logp
