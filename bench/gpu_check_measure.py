"""Measuring helpers of bench/gpu_check.py: device clocks, alternating medians, peak memory, and
the trainer-side log-probs that the engine's (or vLLM's) are compared with."""

from __future__ import annotations

import statistics
import time

import torch

from parallel_r1.structure import batch_packed


def timed(fn, device: str) -> tuple[float, object]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def medians(fns: dict, device: str, repeats: int) -> tuple[dict, dict]:
    """Warm each side up once, then time `repeats` rounds, alternating the sides so drift hits
    all alike; returns the median seconds and the last output of each side."""
    for fn in fns.values():
        fn()
    times, outs = {k: [] for k in fns}, {}
    for _ in range(repeats):
        for k, fn in fns.items():
            seconds, outs[k] = timed(fn, device)
            times[k].append(seconds)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


@torch.no_grad()
def trainer_logprobs(c, rollouts, layout: str) -> list[torch.Tensor]:
    """Log-probs [T_c] of each rollout's completion from one packed forward, as the trainer."""
    out = []
    for r in rollouts:
        ids = torch.tensor([r.prompt_ids + r.completion_ids])  # [1, T]
        batch = batch_packed(ids, torch.ones_like(ids), c.tags, len(r.prompt_ids),
                             layout=layout, dtype=c.model.dtype)
        logits = c.model(input_ids=batch.input_ids.to(c.device),
                         position_ids=batch.position_ids.to(c.device),
                         attention_mask=batch.attention_mask.to(c.device)).logits[0]
        cols = batch.predictor[0, len(r.prompt_ids):].to(c.device)
        logp = logits[cols].float().log_softmax(-1)  # [T_c, V]
        target = torch.tensor(r.completion_ids, device=c.device)[:, None]
        out.append(logp.gather(-1, target)[:, 0].double().cpu())
    return out


def distribution(rollouts, reference: list[torch.Tensor]) -> dict:
    deltas = []
    for r, ref in zip(rollouts, reference):
        mine = torch.tensor(r.logprobs, dtype=torch.float64)
        sampled = torch.tensor(r.loss_mask, dtype=torch.bool)
        deltas.append((mine - ref).abs()[sampled])
    d = torch.cat(deltas)
    d = d[~torch.isnan(d)]
    return {"tokens": int(d.numel()), "max": float(d.max()), "mean": float(d.mean()),
            "p99": float(torch.quantile(d, 0.99)), "blocks": sum(r.num_blocks for r in rollouts)}


