"""Where the time goes, per operator, in the built-in engine and in vLLM's CPU build.

    .venv/bin/python bench/engine_vs_vllm_profile.py --vllm-python .venv-vllm/bin/python

The same causal work on both sides (batch 8 of one 64-token prompt, 32 new tokens, same torch
threads), each under torch.profiler after a warm-up: ours in this process (engine_profile's
`top_ops`), vLLM's in its worker process (vLLM's own profiler, `LLM.start_profile`, whose table
lists the top 50 operators by self CPU time). Operators are summed into groups (linear layers,
attention, norms, ...) by name; times are self CPU ms per decode step (the whole run over the
new tokens, one prefill included). Writes bench/results/engine_vs_vllm_profile[_<label>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

import torch
from engine_bench import load  # bench/ is on the path
from engine_vs_vllm import VllmSide
from engine_vs_vllm_report import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {  # first match wins; op names lower-cased
    "linear layers (GEMM)": ("mm", "linear", "gemm", "onednn", "mkl", "matmul", "weight_packed"),
    "attention": ("attention", "attn", "softmax", "sdpa", "flash", "paged", "reshape_and_cache"),
    "norms": ("rms_norm", "rmsnorm", "layer_norm", "rsqrt", "pow", "mean"),
    "rotary": ("rotary", "rope"),
    "activation": ("silu", "gelu", "act_and_mul", "sigmoid"),
    "sampling": ("sort", "topk", "multinomial", "exponential", "argmax", "log_softmax", "cumsum",
                 "gather", "sampl"),
    "copies, views, casts": ("copy", "cat", "index", "to", "clone", "contiguous", "view",
                             "empty", "select", "slice", "fill", "zero", "stack", "reshape",
                             "expand", "as_strided", "transpose", "permute", "item", "_local"),
    "elementwise": ("add", "mul", "div", "sub", "neg", "where", "masked", "exp", "max", "min"),
}
UNITS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "ns": 1e-6}


def group_of(op: str) -> str:
    name = op.lower()
    for group, keys in GROUPS.items():
        if any(k in name for k in keys):
            return group
    return "other"


def parse_table(text: str) -> tuple[list[dict], float]:
    """torch.profiler's `key_averages().table()` text -> rows {op, self_ms, calls} and the
    footer's total self CPU time in ms."""
    rows, total = [], 0.0
    for line in text.splitlines():
        m = re.match(r"Self CPU time total: ([\d.]+)(\w+)", line.strip())
        if m:
            total = float(m.group(1)) * UNITS[m.group(2)]
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 7 and cells[-1].isdigit():
            value = re.match(r"([\d.]+)(\w+)$", cells[2])
            if value and value.group(2) in UNITS:
                rows.append({"op": cells[0], "self_ms": float(value.group(1)) *
                             UNITS[value.group(2)], "calls": int(cells[-1])})
    return rows, total


def ours_profile(model, tok, prompt: list[int], batch: int, new: int) -> tuple[list[dict], float]:
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams

    params = SamplingParams(max_tokens=new, seed=0, parallel=ParallelParams(mode="causal"))
    engine = TorchEngine(model, tok, stop_ids=[], packed_linears=True)
    engine.generate([prompt] * batch, params)  # warm up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        engine.generate([prompt] * batch, params)
    events = prof.key_averages()
    rows = [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "calls": e.count}
            for e in events]
    return sorted(rows, key=lambda r: -r["self_ms"]), sum(r["self_ms"] for r in rows)


def summarise(rows: list[dict], total_ms: float, new: int) -> dict:
    groups: dict[str, float] = {}
    for r in rows:
        groups[group_of(r["op"])] = groups.get(group_of(r["op"]), 0.0) + r["self_ms"] / new
    listed = sum(r["self_ms"] for r in rows)
    groups["not listed (below the table's top rows)"] = max(total_ms - listed, 0.0) / new
    return {"total_ms_per_step": total_ms / new, "groups_ms_per_step": groups,
            "top_ops": [{**r, "ms_per_step": r["self_ms"] / new} for r in rows[:15]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--vllm-python", default=os.environ.get("VLLM_PYTHON", ".venv-vllm/bin/python"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    from parallel_r1.models import prepared_dir

    torch.set_num_threads(args.threads)
    model_dir = str(prepared_dir()) if args.model == "smollm2" else args.model
    model, tok = load(args.model)
    text = "Solve the following problem step by step. " * 40
    prompt = tok.encode(text, add_special_tokens=False)[:args.prompt_tokens]
    load_start = os.getloadavg()
    with torch.no_grad():
        ours = summarise(*ours_profile(model, tok, prompt, args.batch, args.new_tokens),
                         args.new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        side = VllmSide(args.vllm_python, model_dir, args.threads, profile_dir=tmp)
        try:
            cmd = dict(prompt_ids=prompt, batch=args.batch, new=args.new_tokens, seed=0)
            side("causal", **cmd)  # warm up
            answer = side("profile", **cmd)
        finally:
            side.close()
    vllm = summarise(*parse_table(answer["table"]), args.new_tokens)
    result = {"model": Path(model_dir).name, "threads": args.threads, "batch": args.batch,
              "prompt_tokens": len(prompt), "new_tokens": args.new_tokens,
              "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
              "ours": ours, "vllm": vllm, "vllm_table": answer["table"]}
    stem = RESULTS / ("engine_vs_vllm_profile" + (f"_{args.label}" if args.label else ""))
    table = render(result)
    write_atomic(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_atomic(stem.with_suffix(".md"), table)
    print(table)


def render(r: dict) -> str:
    o, v = r["ours"], r["vllm"]
    lines = [f"# Per-operator profile: built-in engine vs vLLM CPU ({r['model']}, "
             f"{r['threads']} thread(s))", "",
             f"Causal, batch {r['batch']}, prompt {r['prompt_tokens']}, {r['new_tokens']} new "
             "tokens; self CPU ms per decode step (one prefill included), under torch.profiler "
             f"(which slows both). Load {r['loadavg_start'][0]:.1f} -> "
             f"{r['loadavg_end'][0]:.1f}.", "",
             "| group | ours ms/step | vLLM ms/step |", "|---|---|---|"]
    names = list(dict.fromkeys([*o["groups_ms_per_step"], *v["groups_ms_per_step"]]))
    for g in names:
        lines.append(f"| {g} | {o['groups_ms_per_step'].get(g, 0.0):.2f} | "
                     f"{v['groups_ms_per_step'].get(g, 0.0):.2f} |")
    lines += [f"| **total self CPU** | **{o['total_ms_per_step']:.2f}** | "
              f"**{v['total_ms_per_step']:.2f}** |", ""]
    for side, s in (("ours", o), ("vLLM (worker process)", v)):
        lines += [f"Top operators, {side}:", "", "| op | calls | ms / step |", "|---|---|---|"]
        lines += [f"| {t['op']} | {t['calls']} | {t['ms_per_step']:.2f} |"
                  for t in s["top_ops"]]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
