"""The table of bench/engine_vs_vllm.py, and the exactness figures it embeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from exactness_real import result_name  # bench/ is on the path

from parallel_r1.files import write_text_atomic

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def write_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def exactness(model_dir: str, before: bool) -> dict:
    """Run the engine-vs-trainer benches (one after the other; with `before` also on the engine
    as before issue 23, --unpacked) and summarise their figures: the tiny model's largest
    |engine - trainer| log-prob per dtype over every layout and width (exactness_layouts.py),
    and SmolLM2's max / p99 per token per dtype (exactness_real.py)."""
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent / "src")}
    out = {}
    for variant in (["", "_unpacked"] if before else [""]):
        flag = ["--unpacked"] if variant else []
        for script in (["exactness_layouts.py"], ["exactness_real.py", "--model", model_dir]):
            subprocess.run([sys.executable, str(BENCH / script[0]), *script[1:], *flag],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        layouts = json.loads((RESULTS / f"exactness_layouts{variant}.json").read_text())
        real = json.loads((RESULTS / f"exactness_{result_name(model_dir)}{variant}.json")
                          .read_text())
        side = out["ours_before" if variant else "ours"] = {"tiny": {}, "real": {}}
        for dtype in ("float32", "float64"):
            rows = [r for r in layouts if r["dtype"] == dtype]
            side["tiny"][dtype] = {"max_abs_diff": max(r["max_abs_diff"] for r in rows),
                                   "tokens": sum(r["tokens"] for r in rows),
                                   "control_min": min(r["control_min"] for r in rows)}
        for run in real["runs"]:
            side["real"][run["dtype"]] = {"max_abs_diff": max(run["max_abs_diff"]),
                                          "p99_abs_diff": run.get("p99_abs_diff"),
                                          "engine_vs_float64_p99":
                                              run.get("engine_vs_float64_p99"),
                                          "trainer_vs_float64_p99":
                                              run.get("trainer_vs_float64_p99"),
                                          "tokens": sum(run["tokens"]),
                                          "blocks": sum(run["blocks"])}
    return out


def _f(x, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def _load(pair) -> str:
    return "/".join(f"{x:.1f}" for x in pair)


def _tok_s(case: dict, side: str) -> float | None:
    s = case.get(side)
    if s is None:
        return None
    return s["tok_s"] if case["kind"] == "causal" else case["response_tokens"] / s["median_s"]


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
        before = any("ours_before" in c for c in run["cases"])
        lines += [f"## {run['threads']} thread(s) per side (load {_load(run['loadavg_start'])}"
                  f" -> {_load(run['loadavg_end'])})", "",
                  "| case | ours tok/s | vLLM tok/s | ours ms/step | vLLM ms/step | ours prefill "
                  "ms | vLLM prefill ms | ours peak RSS MB | vLLM peak RSS MB | ours / vLLM |"
                  + (" before: tok/s | before / vLLM |" if before else ""),
                  "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if before else "")]
        for c in run["cases"]:
            o, v = c["ours"], c["vllm"]
            if c["kind"] == "causal":
                name = f"causal, batch {c['batch']}"
                pre = (o["prefill_ms"], v["prefill_ms"])
            else:
                name = f"block, P = {c['paths']} (ours structured, vLLM threads)"
                pre = (None, None)
            tok = [_tok_s(c, side) for side in ("ours", "vllm", "ours_before")]
            lines.append(f"| {name} | {tok[0]:.1f} | {tok[1]:.1f} | {o['step_ms']:.1f} | "
                         f"{v['step_ms']:.1f} | {_f(pre[0], '.0f')} | {_f(pre[1], '.0f')} | "
                         f"{o['peak_rss_mb']:.0f} | {v['peak_rss_mb']:.0f} | "
                         f"**{c['ratio_ours_over_vllm']:.2f}** |"
                         + (f" {_f(tok[2], '.1f')} | "
                            f"{_f(c.get('ratio_ours_before_over_vllm'), '.2f')} |"
                            if before else ""))
        lines.append("")
    if "exactness" in r:
        lines += ["## Engine vs trainer log-probs (exactness benches)", "",
                  "| engine | model | dtype | tokens | max abs diff | p99 abs diff | p99 vs float64 "
                  "trainer: engine / trainer | bound |",
                  "|---|---|---|---|---|---|---|---|"]
        for side, e in r["exactness"].items():
            label = "now (default)" if side == "ours" else "before (packed_linears=False)"
            for dtype, bound in (("float32", "-"), ("float64", "1e-9")):
                t = e["tiny"][dtype]
                lines.append(f"| {label} | tiny, every layout, 2-6 paths | {dtype} | "
                             f"{t['tokens']} | {t['max_abs_diff']:.1e} | - | - | {bound} |")
            for dtype, bound in (("float32", "max 2e-4, p99 2e-5"), ("float64", "-")):
                t = e["real"].get(dtype, {})
                lines.append(f"| {label} | {r['model']} structured, {t.get('blocks', 0)} blocks "
                             f"| {dtype} | {t.get('tokens', '-')} | "
                             f"{_f(t.get('max_abs_diff'), '.1e')} | "
                             f"{_f(t.get('p99_abs_diff'), '.1e')} | "
                             f"{_f(t.get('engine_vs_float64_p99'), '.1e')} / "
                             f"{_f(t.get('trainer_vs_float64_p99'), '.1e')} | {bound} |")
        lines.append("")
    return "\n".join(lines)
