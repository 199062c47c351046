"""Logits -> sampled token ids and their log-probs, reproducible from a seed, on the device.

Sampling inverts the cumulative distribution of softmax(filtered logits / T) at one uniform
number per row. That number is a pure function of (seed_r, counter_r), computed with integer
hashing on the logits' device: a sample's tokens depend on its seed alone, never on which other
rows share the batch, and no generator state or noise moves between host and device.
"""

from __future__ import annotations

import torch

_NEG_INF = float("-inf")
_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)  # splitmix64 multipliers as signed int64
_M2 = 0x94D049BB133111EB - (1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_STEP = 0xD1B54A32D192ED03 - (1 << 64)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """The splitmix64 finaliser on int64 (wrapping arithmetic)."""
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def uniform(seeds: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """One uniform number in (0, 1) per row from a hash of (seed, counter): [R] float64.

    Args:
        seeds: [R] int64 per-row seeds.
        counters: [R] int64 per-row draw counters.
    """
    x = _mix(_mix(seeds + _GOLDEN) + (counters + 1) * _STEP)  # [R]
    return (_shr(x, 11).to(torch.float64) + 0.5) / float(1 << 53)


def filter_logits(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor,
                  min_p: torch.Tensor | None = None) -> torch.Tensor:
    """Mask everything outside each row's top-k, top-p nucleus and min-p floor with -inf.

    Args:
        scaled: [B, V] logits already divided by temperature.
        top_k: [B] long, 0 = off.
        top_p: [B] float, 1.0 = off.
        min_p: [B] float, 0.0 = off: drop tokens less likely than min_p x the likeliest one.
    """
    sorted_logits, order = scaled.sort(dim=-1, descending=True)  # [B, V]
    vocab = scaled.shape[-1]
    ranks = torch.arange(vocab, device=scaled.device)[None]  # [1, V]
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab))  # [B]
    drop = ranks >= k[:, None]  # [B, V]
    probs = sorted_logits.softmax(dim=-1)  # [B, V]
    before = probs.cumsum(dim=-1) - probs  # [B, V] mass strictly before each token
    drop |= before >= top_p[:, None]  # keeps the smallest prefix with mass >= top_p
    if min_p is not None:
        drop |= probs < min_p.to(probs.dtype)[:, None] * probs[:, :1]  # [B, V]
    drop[:, 0] = False  # the most likely token always survives
    sorted_logits = sorted_logits.masked_fill(drop, _NEG_INF)
    return torch.empty_like(scaled).scatter_(-1, order, sorted_logits)


def sample(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor,
           top_p: torch.Tensor, seeds: torch.Tensor, counters: torch.Tensor, *,
           filtered: bool = True, scaled: bool = True, greedy: bool | None = None,
           min_p: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row, without reading anything back to the host.

    Args:
        logits: [B, V] raw logits.
        temperature: [B]; 0 = greedy.
        top_k: [B] long; top_p: [B] float; min_p: [B] float or None (off).
        seeds, counters: [B] int64; the noise of a row depends on these alone.
        filtered: some row uses top-k, top-p or min-p (the caller knows; False skips the sort).
        scaled: some row has a temperature other than 0 or 1 (False skips the division, which
            is exact then).
        greedy: every row is greedy (True), none is (False), or unknown / mixed (None); the
            caller knows, and the argmax or the draw that no row uses is skipped.

    Returns:
        ids [B] and logp [B, V] = log_softmax(logits / T) (log_softmax(logits) for greedy rows),
        unfiltered (top-k / top-p / min-p shape the draw only): the distribution a trainer
        recomputes. float64 logits stay float64;
        lower precisions are computed in float32. The same bits whatever the hints say.
    """
    is_greedy = temperature <= 0  # [B]
    work = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32
    if scaled:
        temp = torch.where(is_greedy, torch.ones_like(temperature), temperature)  # [B]
        work = work / temp.to(work.dtype)[:, None]  # [B, V]
    logp = work.log_softmax(dim=-1)  # [B, V]
    if greedy:
        return work.argmax(dim=-1), logp
    kept = filter_logits(work, top_k, top_p, min_p) if filtered else work  # [B, V]
    cdf = kept.softmax(dim=-1).cumsum(dim=-1, dtype=torch.float64)  # [B, V]
    target = uniform(seeds, counters) * cdf[:, -1]  # [B]
    drawn = torch.searchsorted(cdf, target[:, None], right=True)[:, 0]  # [B]
    drawn = drawn.clamp(max=logits.shape[-1] - 1)
    if greedy is False:
        return drawn, logp
    return torch.where(is_greedy, work.argmax(dim=-1), drawn), logp
