"""Where a decode step of the built-in engine spends its time, beside this machine's roofline.

    .venv/bin/python bench/engine_profile.py --model smollm2 --label after

Runs causal sampling (batch 8 by default) and times, per decode step: the model forward (the
transformer itself), the KV cache writes inside it, the attention mask and the inputs built
around it, cache row copies (swap / fork / join), sampling with its one host copy, and the rest
(Python bookkeeping of the block program and the backend). Beside it: transformers `generate`'s
time per step on the same batch, the operators that dominate the forward (torch.profiler), and
two rooflines: bytes of weights (+ KV) read per step / measured copy bandwidth, and FLOPs per
step / measured matmul throughput. Writes bench/results/engine_profile_<model>_<label>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
from engine_bench import load

from parallel_r1.engine.torch_backend import slot_bytes
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("model forward", "cache writes (in forward)", "mask + inputs", "cache copies",
         "sampling + host copy", "prefill (extend)", "Python bookkeeping")


class Clock:
    """Accumulated seconds per part; nested parts are subtracted from their parent."""

    def __init__(self):
        self.total = defaultdict(float)
        self.stack: list[list[float]] = []  # [start, child seconds]

    def wrap(self, obj, name: str, part: str):
        fn = getattr(obj, name)

        def timed(*args, **kwargs):
            self.stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, child = self.stack.pop()
                spent = time.perf_counter() - start
                self.total[part] += spent - child
                if self.stack:
                    self.stack[-1][1] += spent

        setattr(obj, name, timed)

    def absorb(self, obj, name: str, part: str):
        """Time `name` whole as `part`: the parts called inside it are not counted apart."""
        fn = getattr(obj, name)

        def timed(*args, **kwargs):
            before, t0 = dict(self.total), time.perf_counter()
            self.stack.append([t0, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.perf_counter() - t0
                self.total.clear()
                self.total.update(before)
                self.total[part] += spent
                if self.stack:
                    self.stack[-1][1] += spent

        setattr(obj, name, timed)


class TimedModel:
    """The model behind a timer (the backend calls it; everything else passes through)."""

    def __init__(self, model, clock: Clock):
        self._model, self.run = model, model
        clock.wrap(self, "run", "model forward")

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def instrument(engine: TorchEngine, clock: Clock) -> None:
    backend, cache = engine.backend, engine.cache
    backend.run_model = TimedModel(backend.run_model, clock)  # the forward the backend calls
    clock.wrap(backend, "_forward", "mask + inputs")  # minus the model call inside
    clock.wrap(backend, "_sample", "sampling + host copy")
    clock.absorb(backend, "_extend", "prefill (extend)")
    clock.wrap(cache, "update", "cache writes (in forward)")
    for name in ("swap", "copy_prefix", "append_slots"):
        clock.wrap(cache, name, "cache copies")
    clock.wrap(engine, "step", "Python bookkeeping")  # whatever the parts above leave


def profile_engine(model, tok, batch: int, prompt_len: int, new: int, repeats: int) -> dict:
    prompt = tok.encode("Solve the following problem step by step. " * 40)[:prompt_len]
    params = SamplingParams(max_tokens=new, seed=0, parallel=ParallelParams(mode="causal"))
    TorchEngine(model, tok, stop_ids=[]).generate([prompt] * batch, params)  # warm up
    runs = []
    for _ in range(repeats):
        engine, clock = TorchEngine(model, tok, stop_ids=[]), Clock()
        instrument(engine, clock)
        t0 = time.perf_counter()
        engine.generate([prompt] * batch, params)
        wall = time.perf_counter() - t0
        prefill = clock.total.pop("prefill (extend)", 0.0)
        runs.append({"wall_s": wall - prefill, "parts": dict(clock.total), "prefill_s": prefill})
    best = min(runs, key=lambda r: r["wall_s"])  # the least disturbed run
    return {"batch": batch, "prompt_tokens": prompt_len, "new_tokens": new,
            "wall_s": [r["wall_s"] for r in runs], "prefill_s": best["prefill_s"],
            "step_ms": best["wall_s"] / new * 1e3,
            "parts_ms_per_step": {k: v / new * 1e3 for k, v in best["parts"].items()}}


def hf_step_ms(model, tok, batch: int, prompt_len: int, new: int, repeats: int) -> float:
    prompt = tok.encode("Solve the following problem step by step. " * 40)[:prompt_len]
    ids = torch.tensor([prompt] * batch)

    def run(n):
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                       max_new_tokens=n, min_new_tokens=n, top_k=0, top_p=1.0, temperature=1.0,
                       pad_token_id=tok.pad_token_id)
        return time.perf_counter() - t0

    run(new)  # warm up
    whole = min(run(new) for _ in range(repeats))
    prefill = min(run(1) for _ in range(repeats))  # the prompt's forward and the first draw
    return (whole - prefill) / (new - 1) * 1e3


def top_ops(model, tok, batch: int, prompt_len: int, new: int, rows: int = 8) -> list[dict]:
    prompt = tok.encode("Solve the following problem step by step. " * 40)[:prompt_len]
    params = SamplingParams(max_tokens=new, seed=0, parallel=ParallelParams(mode="causal"))
    engine = TorchEngine(model, tok, stop_ids=[])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        engine.generate([prompt] * batch, params)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "calls": e.count, "self_ms_per_step": e.self_cpu_time_total / 1e3 / new}
            for e in events[:rows]]


def roofline(model, batch: int, context: int) -> dict:
    """Copy bandwidth and matmul throughput of this machine, and what they bound a step to."""
    n = 64 * 2**20  # 256 MB of float32, far past any cache
    src, dst = torch.randn(n), torch.empty(n)
    dst.copy_(src)
    t = statistics.median(_time(lambda: dst.copy_(src)) for _ in range(5))
    bandwidth = 2 * n * 4 / t  # bytes read + written per second
    a, b = torch.randn(batch, 2048), torch.randn(2048, 2048)
    t_mm = statistics.median(_time(lambda: [a @ b for _ in range(20)]) for _ in range(5)) / 20
    flops_s = 2 * batch * 2048 * 2048 / t_mm
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    kv_bytes = batch * context * slot_bytes(model)
    flops = 2 * params * batch
    return {"copy_bandwidth_gb_s": bandwidth / 1e9, "matmul_gflop_s": flops_s / 1e9,
            "weight_bytes": weight_bytes, "kv_bytes_per_step": kv_bytes,
            "memory_bound_ms": (weight_bytes + kv_bytes) / bandwidth * 1e3,
            "flops_per_step": flops, "compute_bound_ms": flops / flops_s * 1e3}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny", help="tiny, smollm2, or a model directory")
    ap.add_argument("--label", default="current", help="names the result files")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tok = load(args.model)
    name = Path(args.model).name if args.model not in ("tiny", "smollm2") else args.model
    shape = (model, tok, args.batch, args.prompt_tokens, args.new_tokens)
    with torch.no_grad():  # each side picks its own mode inside (generate: no_grad)
        eng = profile_engine(*shape, args.repeats)
        hf = hf_step_ms(*shape, args.repeats)
        ops = top_ops(*shape)
        rows = {r: profile_engine(model, tok, r, args.prompt_tokens, args.new_tokens,
                                  args.repeats)["step_ms"] for r in (1, 2, 4, 8)}
    roof = roofline(model, args.batch, args.prompt_tokens + args.new_tokens // 2)
    result = {"model": name, "label": args.label, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "engine": eng, "hf_generate_step_ms": hf,
              "top_ops": ops, "roofline": roof,
              "step_ms_by_rows": rows}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"engine_profile_{name}_{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    stem.with_suffix(".md").write_text(table)
    print(table)


def render(r: dict) -> str:
    e, roof = r["engine"], r["roofline"]
    parts = e["parts_ms_per_step"]
    lines = [f"# Decode-step profile: {r['model']}, {r['label']} ({r['threads']} threads, "
             f"torch {r['torch']})", "",
             f"Causal sampling, batch {e['batch']}, prompt {e['prompt_tokens']}, "
             f"{e['new_tokens']} new tokens; per decode step (ms), best of "
             f"{len(e['wall_s'])} runs, the prefill ({e['prefill_s'] * 1e3:.0f} ms) left out.", "",
             "| part | ms / step | share |", "|---|---|---|"]
    total = sum(parts.values())
    for part in PARTS:
        if part in parts:
            lines.append(f"| {part} | {parts[part]:.2f} | {parts[part] / total:.0%} |")
    lines += [f"| **engine step (wall)** | **{e['step_ms']:.2f}** | |",
              f"| transformers generate step (wall) | {r['hf_generate_step_ms']:.2f} | |", "",
              "Top operators (self time, ms / step):", "", "| op | calls | ms / step |",
              "|---|---|---|"]
    lines += [f"| {o['op']} | {o['calls']} | {o['self_ms_per_step']:.2f} |" for o in r["top_ops"]]
    lines += ["", "Roofline of this machine for one decode step:", "",
              f"- copy bandwidth {roof['copy_bandwidth_gb_s']:.1f} GB/s (read + write, "
              "256 MB float32 copy); weights "
              f"{roof['weight_bytes'] / 2**20:.0f} MB + KV {roof['kv_bytes_per_step'] / 2**20:.1f}"
              f" MB read per step -> memory bound {roof['memory_bound_ms']:.1f} ms",
              f"- matmul {roof['matmul_gflop_s']:.1f} GFLOP/s ([{e['batch']}, 2048] x "
              f"[2048, 2048]); {roof['flops_per_step'] / 1e9:.2f} GFLOP per step -> compute "
              f"bound {roof['compute_bound_ms']:.1f} ms",
              f"- measured engine step {e['step_ms']:.1f} ms", "",
              "Decode step vs rows decoded side by side (the block speed-up of P paths is at "
              "most P x step(1) / step(P)):", "", "| rows | ms / step | bound on speed-up | "
              "0.8 P |", "|---|---|---|---|"]
    by_rows = {int(k): v for k, v in r["step_ms_by_rows"].items()}
    lines += [f"| {p} | {ms:.1f} | {p * by_rows[1] / ms:.2f}x | {0.8 * p:.1f}x |"
              for p, ms in sorted(by_rows.items())]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
