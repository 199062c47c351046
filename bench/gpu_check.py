"""GPU readiness check of the built-in engine: one command, no download, about 5 minutes.

    bash bench/gpu_check.sh                           # one CUDA GPU, under 5 minutes
    bash bench/gpu_check.sh --device cpu --small      # the same code on CPU, in seconds

Random-init Qwen3-0.6B and Qwen3-1.7B (configs written below; small ones with --small) in
bfloat16, with the tiny tokenizer of parallel_r1.models.tiny for the prompts and the tags. A
random model almost never writes a tag, so `models.tiny.bias_tags` shifts the tags' logits in
the weights (the engine, the trainer and vLLM see the same model). Per model:
  (a) causal sampling tokens/s and time per decode step: the built-in engine, HF `generate`,
      and vLLM when installed;
  (b) one block of P = 2, 4, 8 paths side by side (structured) against the same tokens written
      one after another (causal): the speed-up;
every timing in (a) and (b) is fair: each side is warmed up first on the same shapes, then the
sides alternate for --repeats rounds around torch.cuda.synchronize and the median is kept;
  (c) the bfloat16 engine/trainer log-prob mismatch on sampled tokens (structured, threads):
      max, mean, p99;
  (d) peak device memory of each part; device->host read-backs per decode step at 4 and 32 rows;
  (e) with vLLM installed (gpu_check_vllm.py): the engine against vLLM on the same weights,
      alternating: causal tokens/s (`engine_over_vllm`) and one block of P = 2, 4, 8 paths (ours
      structured, vLLM threads); and the vLLM backend's log-probs (threads) against the trainer's.
Writes JSON (--out) and prints a short table last. Imports only torch, transformers, tokenizers
and parallel_r1's engine, structure and models code (runs from source with PYTHONPATH=src).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
from gpu_check_measure import distribution, medians, peak_gb, peak_reset, trainer_logprobs
from gpu_check_table import flat, table  # bench/ is on the path
from gpu_check_vllm import vllm_part

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, Request, SamplingParams
from parallel_r1.format.tags import TagIds
from parallel_r1.models.tiny import bias_tags, build_tokenizer

QWEN3 = dict(intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
             num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True,
             max_position_embeddings=40960, rms_norm_eps=1e-6)
MODELS = {"qwen3-0.6b": {**QWEN3, "hidden_size": 1024},
          "qwen3-1.7b": {**QWEN3, "hidden_size": 2048, "intermediate_size": 6144}}
SMALL = {"small-a": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         vocab_size=2048, tie_word_embeddings=True, max_position_embeddings=4096),
         "small-b": dict(hidden_size=96, intermediate_size=192, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                         vocab_size=4096, tie_word_embeddings=True, max_position_embeddings=4096)}
SIZES = {"full": dict(batch=64, prompt=128, new=64, path=32, samples=16, max_tokens=384,
                     repeats=3),
         "small": dict(batch=8, prompt=32, new=24, path=8, samples=4, max_tokens=96, repeats=3)}


class Check:
    """One model under test, its device clock and its tag bias."""

    def __init__(self, name: str, config: dict, device: str, tok, size: dict, deadline: float):
        from transformers import Qwen3Config, Qwen3ForCausalLM

        self.name, self.device, self.tok, self.size, self.deadline = name, device, tok, size, deadline
        self.tags = TagIds.from_tokenizer(tok)
        cfg = Qwen3Config(**config, bos_token_id=None, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        with torch.device(device):
            self.model = Qwen3ForCausalLM(cfg).to(device=device, dtype=torch.bfloat16).eval()
        self.model.generation_config.eos_token_id = None
        self.vocab = cfg.vocab_size

    def bias(self, **probs: float) -> None:
        """Give tags roughly these probabilities (a logit shift in the weights, `bias_tags`,
        over a near-flat vocabulary); 1 and 0 mean always and never."""
        logits = {name: (60.0 if p >= 1 else -60.0) if p in (0, 1) else
                  math.log(p / (1 - p) * self.vocab * 1.2) for name, p in probs.items()}
        bias_tags(self.model, self.tok, **logits)

    def natural(self) -> None:
        self.bias(parallel_open=0.05, path_close=0.06)  # blocks every ~20 tokens, paths of ~16

    def prompt(self, n: int, salt: int = 0) -> list[int]:
        return [(100 + 7 * i + salt) % 500 for i in range(n)]

    def left(self) -> float:
        return self.deadline - time.monotonic()


@torch.no_grad()
def throughput(c: Check) -> dict:
    """Causal sampling, engine vs `generate`, same batch and warm-up; per decode step: the time
    of `new` tokens less that of 1 token (the prefill and first draw), over new - 1 steps."""
    s, dev, reps = c.size, c.device, c.size["repeats"]
    c.bias()
    prompt = c.prompt(s["prompt"])
    engine = TorchEngine(c.model, c.tok, stop_ids=[])
    ids = torch.tensor([prompt] * s["batch"], device=dev)

    def ours(n):
        params = SamplingParams(max_tokens=n, seed=0, parallel=ParallelParams(mode="causal"))
        return lambda: engine.generate([prompt] * s["batch"], params)

    def hf(n):
        return lambda: c.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=n,
            min_new_tokens=n, top_k=0, top_p=1.0, temperature=1.0,
            pad_token_id=c.tok.pad_token_id)

    peak_reset(dev)
    t, _ = medians({"ours": ours(s["new"]), "hf": hf(s["new"])}, dev, reps)
    ours_peak = peak_gb(dev)
    t1, _ = medians({"ours": ours(1), "hf": hf(1)}, dev, reps)
    steps = s["new"] - 1
    tokens = s["batch"] * s["new"]
    return {"batch": s["batch"], "prompt_tokens": s["prompt"], "new_tokens": s["new"],
            "repeats": reps, "engine_tok_s": tokens / t["ours"],
            "hf_generate_tok_s": tokens / t["hf"], "engine_over_hf": t["hf"] / t["ours"],
            "engine_step_ms": (t["ours"] - t1["ours"]) / steps * 1e3,
            "hf_step_ms": (t["hf"] - t1["hf"]) / steps * 1e3,
            "engine_prefill_ms": t1["ours"] * 1e3, "hf_prefill_ms": t1["hf"] * 1e3,
            "engine_peak_gb": ours_peak, "engine_kv_gb": engine.cache.memory_bytes() / 2**30}


@torch.no_grad()
def block_speedup(c: Check, paths: int) -> dict:
    """One block of `paths` paths side by side vs the same number of tokens one after another,
    both warmed up, median of the repeats; per step: each side's time over its decode steps."""
    dev, length, reps = c.device, c.size["path"], c.size["repeats"]
    c.bias(parallel_open=1, path_close=0)  # a block at once; every path runs to its cap
    engine = TorchEngine(c.model, c.tok, stop_ids=[])
    total = 1 + paths * length + 3 + len(c.tok.encode("\n", add_special_tokens=False))
    par = SamplingParams(max_tokens=total, seed=0, parallel=ParallelParams(
        num_paths=paths, max_paths=max(paths, 2), max_path_tokens=length, max_blocks=1))
    prompt = c.prompt(16, salt=paths)
    (r_par,) = engine.generate([prompt], par)  # fixes the sequential side's length
    seq = SamplingParams(max_tokens=len(r_par.completion_ids), seed=0,
                         parallel=ParallelParams(mode="causal"))
    peak_reset(dev)
    t, outs = medians({"par": lambda: engine.generate([prompt], par),
                       "seq": lambda: engine.generate([prompt], seq)}, dev, reps)
    (r_par,), (r_seq,) = outs["par"], outs["seq"]
    return {"paths": paths, "path_tokens": length, "response_tokens": len(r_par.completion_ids),
            "critical_path_tokens": r_par.critical_path_length, "repeats": reps,
            "parallel_s": t["par"], "sequential_s": t["seq"], "speedup": t["seq"] / t["par"],
            "parallel_step_ms": t["par"] / r_par.critical_path_length * 1e3,
            "sequential_step_ms": t["seq"] / len(r_seq.completion_ids) * 1e3,
            "peak_gb": peak_gb(dev), "blocks": r_par.num_blocks}


@torch.no_grad()
def mismatch(c: Check, layout: str) -> dict:
    s = c.size
    c.natural()
    params = SamplingParams(max_tokens=s["max_tokens"], n=s["samples"] // 2, seed=1,
                            parallel=ParallelParams(mode=layout, num_paths=2,
                                                    max_path_tokens=64))
    prompts = [c.prompt(24, salt=k) for k in range(2)]
    peak_reset(c.device)
    rollouts = TorchEngine(c.model, c.tok, stop_ids=[]).generate(prompts, params)
    out = distribution(rollouts, trainer_logprobs(c, rollouts, layout))
    return {**out, "layout": layout, "peak_gb": peak_gb(c.device)}


def syncs_per_step(c: Check) -> dict:
    """Device->host synchronisations of one decode step at 4 and 32 rows (CUDA only)."""
    if not c.device.startswith("cuda"):
        return {}
    c.bias()
    counts = {}
    for rows in (4, 32):
        engine = TorchEngine(c.model, c.tok, stop_ids=[])
        params = SamplingParams(max_tokens=64, n=rows, seed=2, parallel=ParallelParams(
            mode="causal"))
        engine.add_request(Request("r", c.prompt(16), params))
        engine.step()
        engine.step()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(4):
                    engine.backend.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        counts[f"rows_{rows}"] = sum("synchroniz" in str(w.message) for w in caught) / 4
    return counts


def run_part(c: Check, fn, need_s: float, *args):
    if c.left() < need_s:
        return {"skipped": f"out of time ({c.left():.0f} s left)"}
    try:
        return fn(c, *args)
    except Exception as exc:  # keep the other parts' figures
        return {"error": f"{type(exc).__name__}: {exc}"}


def check_model(c: Check, with_vllm: bool, need: float) -> dict:
    return {"throughput": run_part(c, throughput, need),
            "blocks": [run_part(c, block_speedup, need, p) for p in (2, 4, 8)],
            "mismatch": [run_part(c, mismatch, need, k) for k in ("structured", "threads")],
            "syncs_per_decode_step": run_part(c, syncs_per_step, need),
            "vllm": run_part(c, vllm_part, 4 * need) if with_vllm else {"skipped": "first only"}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--small", action="store_true", help="small configs and sizes (CPU mode)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/gpu_check"
                                                "[_small].json; the table beside it as .md)")
    ap.add_argument("--budget-s", type=float, default=270.0,
                    help="stop starting parts after this many seconds (default 270: the whole "
                         "check ends within about 5 minutes)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per measurement (>= 3)")
    ap.add_argument("--models", default=None, help="comma-separated subset of the models")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device; use --device cpu --small",
              file=sys.stderr)
        return 2
    start = time.monotonic()
    deadline = start + args.budget_s
    if args.repeats < 3:
        print("error: --repeats must be >= 3 (a median of fewer is not one)", file=sys.stderr)
        return 2
    tok = build_tokenizer()
    size = {**SIZES["small" if args.small else "full"], "repeats": args.repeats}
    import transformers

    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "device": args.device,
           "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda")
           else platform.processor() or platform.machine(), "sizes": size}
    result = {"env": env, "models": {}}
    configs = SMALL if args.small else MODELS
    wanted = args.models.split(",") if args.models else list(configs)
    unknown = sorted(set(wanted) - set(configs))
    if unknown:
        print(f"error: unknown models {unknown}; known: {', '.join(configs)}", file=sys.stderr)
        return 2
    for i, (name, config) in enumerate((n, configs[n]) for n in wanted):
        c = Check(name, config, args.device, tok, size, deadline)
        result["models"][name] = check_model(c, with_vllm=i == 0, need=2 if args.small else 20)
        del c
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    env["seconds"] = time.monotonic() - start
    result["imported"] = sorted({m.split(".")[0] for m in sys.modules} & {
        "trl", "vllm", "math_verify", "datasets", "peft", "fastapi"})
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / (
        "gpu_check_small.json" if args.small else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    text = table(result)
    out.with_suffix(".md").write_text(text)
    print(f"wrote {out} and {out.with_suffix('.md')}\n")
    print(text)
    return 1 if any("error" in v for m in result["models"].values() for _, v in flat(m)
                    if isinstance(v, dict)) else 0


if __name__ == "__main__":
    sys.exit(main())
