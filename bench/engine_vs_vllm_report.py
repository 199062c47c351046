"""The table of bench/engine_vs_vllm.py, and the exactness figures it embeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from parallel_r1.files import write_text_atomic

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def write_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def exactness(model_dir: str) -> dict:
    """Run the engine-vs-trainer benches (one after the other) and summarise their figures:
    the tiny model's largest |engine - trainer| log-prob per dtype over every layout and width
    (exactness_layouts.py), and SmolLM2's max / p99 per token per dtype (exactness_real.py)."""
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent / "src")}
    for script in (["exactness_layouts.py"], ["exactness_real.py", "--model", model_dir]):
        subprocess.run([sys.executable, str(BENCH / script[0]), *script[1:]], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    layouts = json.loads((RESULTS / "exactness_layouts.json").read_text())
    out = {"tiny": {}, "real": {}}
    for dtype in ("float32", "float64"):
        rows = [r for r in layouts if r["dtype"] == dtype]
        out["tiny"][dtype] = {"max_abs_diff": max(r["max_abs_diff"] for r in rows),
                              "tokens": sum(r["tokens"] for r in rows),
                              "control_min": min(r["control_min"] for r in rows)}
    real = json.loads((RESULTS / f"exactness_{Path(model_dir).name}.json").read_text())
    for run in real["runs"]:
        out["real"][run["dtype"]] = {"max_abs_diff": max(run["max_abs_diff"]),
                                     "p99_abs_diff": run.get("p99_abs_diff"),
                                     "tokens": sum(run["tokens"]), "blocks": sum(run["blocks"])}
    return out


def _f(x, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def _load(pair) -> str:
    return "/".join(f"{x:.1f}" for x in pair)


def render(r: dict) -> str:
    s = r["settings"]
    lines = [f"# Built-in engine vs vLLM CPU: {r['model']} ({r['params'] / 1e6:.1f} M params, "
             f"{r['dtype']}, torch {r['torch']}, {r['cpu_count']} CPUs)", "",
             f"Load average (1/5/15 min) at start {_load(r['loadavg_start'])}, at end "
             f"{_load(r['loadavg_end'])}. Medians of {s['repeats']} alternating rounds after a "
             "warm-up; ratio = vLLM's seconds / ours (> 1: ours faster). Causal: prompt "
             f"{s['prompt_tokens']}, {s['new_tokens']} new tokens per sample; block: paths of "
             f"{s['path_tokens']} tokens (tags included), {s['after_tokens']} tokens after "
             "<Summary>; ms / step = median seconds / decode steps (causal: (t(N) - t(1)) / "
             "(N - 1); block: over the critical path). Peak RSS is monotone over a run (cases "
             "in order); vLLM's is the sum over its processes (its 1 GiB KV cache included).", ""]
    for run in r["runs"]:
        lines += [f"## {run['threads']} thread(s) per side (load {_load(run['loadavg_start'])}"
                  f" -> {_load(run['loadavg_end'])})", "",
                  "| case | ours tok/s | vLLM tok/s | ours ms/step | vLLM ms/step | ours prefill "
                  "ms | vLLM prefill ms | ours peak RSS MB | vLLM peak RSS MB | ours / vLLM |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in run["cases"]:
            o, v = c["ours"], c["vllm"]
            if c["kind"] == "causal":
                name = f"causal, batch {c['batch']}"
                tok = (o["tok_s"], v["tok_s"])
                pre = (o["prefill_ms"], v["prefill_ms"])
            else:
                name = f"block, P = {c['paths']} (ours structured, vLLM threads)"
                tok = (c["response_tokens"] / o["median_s"], c["response_tokens"] / v["median_s"])
                pre = (None, None)
            lines.append(f"| {name} | {tok[0]:.1f} | {tok[1]:.1f} | {o['step_ms']:.1f} | "
                         f"{v['step_ms']:.1f} | {_f(pre[0], '.0f')} | {_f(pre[1], '.0f')} | "
                         f"{o['peak_rss_mb']:.0f} | {v['peak_rss_mb']:.0f} | "
                         f"**{c['ratio_ours_over_vllm']:.2f}** |")
        lines.append("")
    if "exactness" in r:
        e = r["exactness"]
        lines += ["## Engine vs trainer log-probs (exactness benches, this code)", "",
                  "| model | dtype | tokens | max abs diff | p99 abs diff | bound |",
                  "|---|---|---|---|---|---|"]
        for dtype, bound in (("float32", "-"), ("float64", "1e-9")):
            t = e["tiny"][dtype]
            lines.append(f"| tiny, every layout, 2-6 paths | {dtype} | {t['tokens']} | "
                         f"{t['max_abs_diff']:.1e} | - | {bound} |")
        for dtype, bound in (("float32", "max 2e-4, p99 2e-5"), ("float64", "-")):
            t = e["real"].get(dtype, {})
            lines.append(f"| {r['model']} structured, {t.get('blocks', 0)} blocks | {dtype} | "
                         f"{t.get('tokens', '-')} | {_f(t.get('max_abs_diff'), '.1e')} | "
                         f"{_f(t.get('p99_abs_diff'), '.1e')} | {bound} |")
        lines.append("")
    return "\n".join(lines)
