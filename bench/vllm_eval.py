"""Eval on vLLM's CPU build against the built-in engine: accuracy from `parallel-r1 eval` with each
backend, and each engine's sampling log-probs against the trainer's forward on its own samples
(per token: max / p99 / mean, float32), in the causal and threads layouts.

    .venv-vllm/bin/python bench/vllm_eval.py --model tiny
    .venv-vllm/bin/python bench/vllm_eval.py --model smollm2 --model-dir DIR

The accuracy runs are the real CLI (`parallel-r1 eval MODEL --backend vllm|torch`, a fresh process
each; the summary names the backend that sampled). The log-prob figures come from vLLM in this
process (`engine.vllm_backend.open_llm`, as `eval --backend vllm` builds it) and the built-in
engine, both sampling the same prompts, each scored by `eval.agreement` (the trainer's packed
forward). Writes bench/results/vllm_eval_<model>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CLI = Path(sys.executable).parent / "parallel-r1"
SETTINGS = {  # benchmark, problems, samples, token cap, template, path cap
    # limit 16 crashed vLLM 0.32's CPU runner in the in-process part ("CPU Generator does not use
    # offset": a seeded request whose prefill is chunked; see the README); 4 stays below it
    "tiny": dict(bench="synthetic-l1", limit=4, samples=2, max_tokens=60, template="none",
                 max_path_tokens=16),
    "smollm2": dict(bench="gsm8k", limit=8, samples=2, max_tokens=256, template="parallel",
                    max_path_tokens=64),
}


def accuracy(model: Path, backend: str, mode: str, s: dict, work: Path) -> dict:
    """One `parallel-r1 eval` run: its headline accuracy, wall time and the backend it names."""
    out = work / f"eval-{backend}-{mode}"
    cmd = [str(CLI), "eval", str(model), "--backend", backend, "--mode", mode, "--out", str(out),
           "--benchmarks", s["bench"], "--limit", str(s["limit"]), "--samples", str(s["samples"]),
           "--max-tokens", str(s["max_tokens"]), "--template", s["template"],
           "--kv-cache-gb", "1" if backend == "vllm" else "0.5"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    grades = summary["benchmarks"][s["bench"]]["grades"]["math-verify"]
    return {"backend": backend, "mode": mode, "engine": summary["engine"],
            "mean": grades["mean"], "seconds": round(time.perf_counter() - start, 1)}


def agreements(model: Path, s: dict) -> list[dict]:
    """Both engines sample the same prompts; each engine's log-probs against the trainer's."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # vLLM's engine core in this process
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.driver import Engine
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.engine.vllm_backend import VLLMBackend, open_llm
    from parallel_r1.eval.agreement import agreement
    from parallel_r1.eval.benchmarks import load_problems, parse_names
    from parallel_r1.format.tags import TagIds
    from parallel_r1.models import load
    from parallel_r1.models.load import apply_template

    net, tok = load(str(model))
    net = net.float().eval()
    tags = TagIds.from_tokenizer(tok)
    records, _ = load_problems(parse_names(s["bench"])[0], limit=s["limit"])
    prompts = [apply_template(tok, render_prompt(s["template"], r.question)) for r in records]
    llm = open_llm(str(model), seed=0, kv_cache_gb=1)
    rows = []
    for mode in ("causal", "threads"):
        params = SamplingParams(max_tokens=s["max_tokens"], n=s["samples"], seed=11,
                                parallel=ParallelParams(mode=mode,
                                                        max_path_tokens=s["max_path_tokens"]))
        for name, engine in (("vllm", Engine(VLLMBackend(llm), tok)),
                             ("torch", TorchEngine(net, tok))):
            start = time.perf_counter()
            rollouts = engine.generate(prompts, params)
            seconds = time.perf_counter() - start
            rows.append({"engine": name, "mode": mode, "sample_s": round(seconds, 1),
                         **agreement(net, tags, rollouts, mode)})
    return rows


def report(name: str, accs: list[dict], gaps: list[dict]) -> str:
    lines = [f"# Eval on vLLM (CPU build) vs the built-in engine: {name}", "",
             "| layout | backend | summary's engine | mean accuracy (math-verify) | wall s |",
             "|---|---|---|---|---|"]
    lines += [f"| {a['mode']} | {a['backend']} | {a['engine']} | {a['mean']['value']:.3f} "
              f"[{a['mean']['low']:.3f}, {a['mean']['high']:.3f}] | {a['seconds']} |" for a in accs]
    lines += ["", "|engine log-prob - trainer log-prob| on each engine's own samples (float32):",
              "", "| layout | engine | tokens | blocks | max | p99 | mean | sampling s |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {g['mode']} | {g['engine']} | {g['tokens']} | {g['blocks']} | {g['max']:.2e} | "
              f"{g['p99']:.2e} | {g['mean']:.2e} | {g['sample_s']} |" for g in gaps]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SETTINGS), default="tiny")
    parser.add_argument("--model-dir", help="the saved model (default: built / prepared here)")
    args = parser.parse_args()
    s = SETTINGS[args.model]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model_dir:
            model = Path(args.model_dir)
        else:
            sys.path.insert(0, str(Path(__file__).parent))
            from vllm_rl import model_dir

            model = model_dir(args.model, work)
        accs = [accuracy(model, b, m, s, work) for m in ("causal", "threads")
                for b in ("vllm", "torch")]
        gaps = agreements(model, s)
    RESULTS.mkdir(exist_ok=True)
    record = {"model": args.model, "settings": s, "accuracy": accs, "logprobs": gaps,
              "loadavg_after": os.getloadavg()}
    (RESULTS / f"vllm_eval_{args.model}.json").write_text(json.dumps(record, indent=1) + "\n")
    text = report(args.model, accs, gaps)
    (RESULTS / f"vllm_eval_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
