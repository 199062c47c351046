"""Engine benchmark: sampling speed against transformers' `generate`, block latency, memory.

    .venv/bin/python bench/engine_bench.py --model tiny
    .venv/bin/python bench/engine_bench.py --model smollm2

(a) causal-mode sampling throughput of our engine vs `model.generate` on the same model, batch
    and lengths (no early stop on either side), as a ratio measured in one run;
(b) latency of one parallel block with P paths of L tokens decoded side by side (structured mode)
    vs the same number of tokens written one after another (causal mode), as a ratio;
(c) memory: the KV cache each side holds at the end and the process's peak RSS.
Writes bench/results/engine_<model>[_<label>].json and .md. Each side is warmed up on its own
shapes, then timings alternate the two sides and keep the median of `--repeats` runs, because
this machine's timings are noisy; both sides run at the same torch thread count.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.format.tags import TagIds

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str):
    from parallel_r1.models import build_tiny, prepared_dir
    from parallel_r1.models import load as load_dir

    if name == "tiny":
        return build_tiny(seed=0, num_layers=4, hidden=128)
    path = prepared_dir() if name == "smollm2" else name
    model, tok = load_dir(path)
    return model.eval(), tok


def steer(model, tok):
    """Make block structure deterministic without changing the cost of a step.

    After the prompt's last token the model writes <Parallel>; inside paths </Path> and every
    stop token are suppressed, so each path runs to its token limit.
    """
    tags = TagIds.from_tokenizer(tok)
    state = {}

    def remember(module, args, kwargs):
        state["last"] = kwargs["input_ids"][:, -1]

    def bias(module, args, out):
        out = out.clone()
        out[..., tags.path_close] = -1e4
        out[..., tok.eos_token_id] = -1e4
        start = state["last"] == state["marker"]
        out[start, -1, tags.parallel_open] = 1e4
        return out

    hooks = [model.register_forward_pre_hook(remember, with_kwargs=True),
             model.lm_head.register_forward_hook(bias)]
    return state, hooks


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_throughput(model, tok, batch: int, prompt_len: int, new: int, repeats: int) -> dict:
    prompt = (tok.encode("Solve the following problem step by step. " * 40)[:prompt_len])
    ids = torch.tensor([prompt] * batch)
    engine = TorchEngine(model, tok, stop_ids=[])
    params = SamplingParams(max_tokens=new, parallel=ParallelParams(mode="causal"))

    def ours():
        return engine.generate([prompt] * batch, params)

    def hf():
        return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                              max_new_tokens=new, min_new_tokens=new, top_k=0, top_p=1.0,
                              temperature=1.0, pad_token_id=tok.pad_token_id,
                              return_dict_in_generate=True)

    ours(), hf()  # warm up
    t_ours, t_hf = [], []
    for _ in range(repeats):  # alternate so drift hits both sides alike
        t_ours.append(timed(ours, 1)[0])
        t_hf.append(timed(hf, 1)[0])
    out = hf()
    hf_kv = sum(t.numel() * t.element_size() for layer in out.past_key_values.layers
                for t in (layer.keys, layer.values))
    tokens = batch * new
    return {"batch": batch, "prompt_tokens": prompt_len, "new_tokens": new,
            "ours_tok_s": tokens / statistics.median(t_ours),
            "hf_generate_tok_s": tokens / statistics.median(t_hf),
            "ratio_ours_over_hf": statistics.median(t_hf) / statistics.median(t_ours),
            "ours_kv_bytes_capacity": engine.cache.memory_bytes(), "hf_kv_bytes": hf_kv}


def bench_block(model, tok, paths: int, path_len: int, repeats: int) -> dict:
    state, hooks = steer(model, tok)
    prompt = tok.encode("Compute the total in two ways.")
    state["marker"] = prompt[-1]
    engine = TorchEngine(model, tok, stop_ids=[])
    total = 1 + paths * path_len + 1 + len(tok.encode("\n", add_special_tokens=False)) + 1
    par = SamplingParams(max_tokens=total, seed=0, parallel=ParallelParams(
        num_paths=paths, max_paths=max(paths, 2), max_path_tokens=path_len))
    seq = SamplingParams(max_tokens=total, seed=0, parallel=ParallelParams(mode="causal"))
    try:
        engine.generate([prompt], par)  # warm up both sides on their own shapes
        engine.generate([prompt], seq)
        t_par, t_seq = [], []
        for _ in range(repeats):
            t_par.append(timed(lambda: engine.generate([prompt], par), 1))
            t_seq.append(timed(lambda: engine.generate([prompt], seq), 1))
    finally:
        for h in hooks:
            h.remove()
    r_par, r_seq = t_par[-1][1][0], t_seq[-1][1][0]
    assert r_par.num_blocks == 1 and len(r_par.completion_ids) == len(r_seq.completion_ids)
    lat_par = statistics.median(t for t, _ in t_par)
    lat_seq = statistics.median(t for t, _ in t_seq)
    return {"paths": paths, "path_tokens": path_len, "response_tokens": total,
            "critical_path_tokens": r_par.critical_path_length,
            "parallel_s": lat_par, "sequential_s": lat_seq, "speedup": lat_seq / lat_par,
            "parallel_step_ms": lat_par / r_par.critical_path_length * 1e3,
            "sequential_step_ms": lat_seq / len(r_seq.completion_ids) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny", help="tiny, smollm2, or a model directory")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--path-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paths", default="2,4,8", help="block widths P to time, comma-separated")
    ap.add_argument("--label", default="", help="suffix of the result files (e.g. before)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0 = torch's default); on a loaded 2-core machine, 1 "
                         "avoids OpenMP stalls that swamp small matmuls")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tok = load(args.model)
    name = Path(args.model).name if args.model not in ("tiny", "smollm2") else args.model
    with torch.no_grad():  # each side picks its own mode inside (generate: no_grad)
        thr = bench_throughput(model, tok, args.batch, args.prompt_tokens, args.new_tokens,
                               args.repeats)
        blocks = [bench_block(model, tok, int(p), args.path_tokens, args.repeats)
                  for p in args.paths.split(",")]
    result = {"model": name, "params": sum(p.numel() for p in model.parameters()),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.machine(), "throughput": thr, "blocks": blocks,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    RESULTS.mkdir(exist_ok=True)
    stem = f"engine_{name}" + (f"_{args.label}" if args.label else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (RESULTS / f"{stem}.md").write_text(table)
    print(table)


def render(r: dict) -> str:
    t = r["throughput"]
    lines = [f"# Engine benchmark: {r['model']} ({r['params'] / 1e6:.2f} M params, CPU, "
             f"{r['threads']} threads, torch {r['torch']})", "",
             f"(a) causal sampling, batch {t['batch']}, prompt {t['prompt_tokens']}, "
             f"{t['new_tokens']} new tokens each", "",
             "| sampler | tokens/s | KV cache (MB) |", "|---|---|---|",
             f"| parallel-r1 engine | {t['ours_tok_s']:.1f} | "
             f"{t['ours_kv_bytes_capacity'] / 2**20:.1f} (capacity) |",
             f"| transformers generate | {t['hf_generate_tok_s']:.1f} | "
             f"{t['hf_kv_bytes'] / 2**20:.1f} |",
             f"| ratio (ours / generate) | {t['ratio_ours_over_hf']:.2f} (goal >= 1.2) | |", "",
             "(b) one block, paths side by side vs the same tokens one after another (batch 1)",
             "", "| paths | tokens/path | response tokens | critical path | parallel s | "
             "sequential s | ms / step par, seq | speed-up | goal 0.8 P |",
             "|---|---|---|---|---|---|---|---|---|"]
    for b in r["blocks"]:
        lines.append(f"| {b['paths']} | {b['path_tokens']} | {b['response_tokens']} | "
                     f"{b['critical_path_tokens']} | {b['parallel_s']:.3f} | "
                     f"{b['sequential_s']:.3f} | {b['parallel_step_ms']:.1f}, "
                     f"{b['sequential_step_ms']:.1f} | {b['speedup']:.2f}x | "
                     f"{0.8 * b['paths']:.1f}x |")
    lines += ["", f"(c) peak RSS of the benchmark process: {r['peak_rss_mb']:.0f} MB", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
