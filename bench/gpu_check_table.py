"""The short table bench/gpu_check.py prints last (and writes beside its JSON)."""

from __future__ import annotations


def table(result: dict) -> str:
    def f(x, spec=".0f"):
        return format(x, spec) if isinstance(x, (int, float)) else "-"

    lines = [f"# GPU check ({result['env']['device_name']}, torch {result['env']['torch']}, "
             f"transformers {result['env']['transformers']}, {result['env']['seconds']:.0f} s)",
             "", "| model | engine tok/s | generate tok/s | engine/generate ms per step | "
             "vLLM tok/s | engine/vLLM causal, block P=2/4/8 | block P=2/4/8 | bf16 mismatch structured max/p99 | threads max/p99 | "
             "vLLM threads max/p99 | peak GB | syncs/step (4, 32 rows) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        t, v = m["throughput"], m["vllm"]
        blocks = "/".join(f(b.get("speedup"), ".2f") for b in m["blocks"])
        vs = f(v.get("engine_over_vllm"), ".2f") + ", " + "/".join(
            f(b.get("engine_over_vllm"), ".2f") for b in v.get("blocks", [])) if v.get(
            "blocks") else f(v.get("engine_over_vllm"), ".2f")
        mm = [f"{f(x.get('max'), '.1e')}/{f(x.get('p99'), '.1e')}" for x in m["mismatch"]]
        vm = v.get("threads_mismatch", {})
        peaks = [t.get("engine_peak_gb")] + [x.get("peak_gb") for x in m["mismatch"]]
        peak = max((p for p in peaks if isinstance(p, float)), default=None)
        syncs = m["syncs_per_decode_step"]
        lines.append(f"| {name} | {f(t.get('engine_tok_s'))} | {f(t.get('hf_generate_tok_s'))} "
                     f"| {f(t.get('engine_step_ms'), '.2f')}/{f(t.get('hf_step_ms'), '.2f')} "
                     f"| {f(v.get('tok_s'))} | {vs} | {blocks} | {mm[0]} | {mm[1]} | "
                     f"{f(vm.get('max'), '.1e')}/{f(vm.get('p99'), '.1e')} | {f(peak, '.1f')} | "
                     f"{f(syncs.get('rows_4'), '.1f')}, {f(syncs.get('rows_32'), '.1f')} |")
    problems = [f"- {name} {part}: {v}" for name, m in result["models"].items()
                for part, v in flat(m) if isinstance(v, dict) and ("error" in v or
                                                                    "skipped" in v)]
    return "\n".join(lines + ([""] + problems if problems else [])) + "\n"


def flat(m: dict):
    """(part name, figures) of one model's result, list parts numbered."""
    for part, v in m.items():
        for i, item in enumerate(v if isinstance(v, list) else [v]):
            yield (f"{part}[{i}]" if isinstance(v, list) else part), item
