"""Engine vs trainer log-probs on a real model, long structured rollouts, float32 and float64.

    .venv/bin/python bench/exactness_real.py [--model DIR] [--prompts 16] [--max-tokens 400]

DIR defaults to the prepared SmolLM2-135M-Instruct; a model after SFT (e.g.
runs/smollm2-cpu/1-sft/model) writes blocks more often. For each dtype: sample GSM8K-test prompts
in structured mode, then score the finished sequences with one teacher-forced forward under
`batch_structure`'s mask and positions; report the largest |difference| per rollout and the p99
per token. In float32 both sides are also scored by a float64 copy of the model: the engine's
and the trainer's own p99 distance from it say how much of the gap is float32 rounding. Float64
models run their RMS norms in float64 (`full_precision_norms`; Hugging Face's run in float32).
As a scale
for what a real mismatch looks like, the float64 rollouts with a block are also scored with the
plain causal structure. Writes bench/results/exactness_<model>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
import types
from pathlib import Path

import torch

from parallel_r1.data.sources import load_dataset
from parallel_r1.data.templates import render_prompt
from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.format.tags import TagIds
from parallel_r1.models import apply_template, load, prepared_dir
from parallel_r1.structure import batch_structure

RESULTS = Path(__file__).resolve().parent / "results"


def scored(model, tags, rollout, structured=True) -> torch.Tensor:
    """Teacher-forced log-probs [T_c] of the completion, computed in float64 after the model."""
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids])  # [1, T]
    pos, mask = batch_structure(ids, torch.ones_like(ids), tags, len(rollout.prompt_ids),
                                dtype=model.dtype, structured=structured)
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=pos, attention_mask=mask).logits
    logp = logits[0, len(rollout.prompt_ids) - 1:-1].to(torch.float64).log_softmax(-1)
    return logp.gather(-1, torch.tensor(rollout.completion_ids)[:, None])[:, 0]


def full_precision_norms(model) -> None:
    """Run the RMS norms of a float64 model in float64.

    Hugging Face's Llama-family RMSNorm computes in float32 whatever its input, a downcast for a
    float64 model: the engine and the trainer, whose float64 hidden states differ by ~1e-15 (other
    shapes, other summation orders), now and then round one element to neighbouring float32
    values, and later layers carry that step (~5e-7) to every later token's log-prob (~1e-6).
    Same arithmetic as Hugging Face's for float32 and narrower inputs.
    """
    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = hidden_states.dtype
        x = hidden_states.to(torch.promote_types(dtype, torch.float32))
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)

    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
            module.forward = types.MethodType(forward, module)


def float64(model):
    model = model.to(torch.float64).eval()
    full_precision_norms(model)
    return model


def run(path: str, dtype: torch.dtype, questions: list[str], max_tokens: int,
        packed: bool = True) -> dict:
    model, tok = load(path)
    model = float64(model) if dtype == torch.float64 else model.to(dtype).eval()
    exact = float64(load(path)[0]) if dtype != torch.float64 else None
    tags = TagIds.from_tokenizer(tok)
    prompts = [apply_template(tok, render_prompt("parallel", q)) for q in questions]
    params = SamplingParams(max_tokens=max_tokens, seed=3,
                            parallel=ParallelParams(max_path_tokens=max_tokens // 2))
    started = time.perf_counter()
    rollouts = TorchEngine(model, tok, packed_linears=packed).generate(prompts, params)
    seconds = time.perf_counter() - started
    trainer = [scored(model, tags, r) for r in rollouts]  # [T_c] each
    engine = [torch.tensor(r.logprobs, dtype=torch.float64) for r in rollouts]
    per_token = [(t - e).abs() for t, e in zip(trainer, engine)]
    diffs = [d.max().item() for d in per_token]
    truth = {}
    if exact is not None:  # both float32 sides against a float64 trainer: the rounding floor
        t64 = torch.cat([scored(exact, tags, r) for r in rollouts])
        truth = {side + "_vs_float64_p99": torch.quantile((torch.cat(x) - t64).abs(), 0.99).item()
                 for side, x in (("engine", engine), ("trainer", trainer))}
    wrong = [(scored(model, tags, r, structured=False)
              - torch.tensor(r.logprobs, dtype=torch.float64)).abs().max().item()
             for r in rollouts if r.num_blocks]
    return {"dtype": str(dtype).removeprefix("torch."), "tokens": [r.num_tokens for r in rollouts],
            "blocks": [r.num_blocks for r in rollouts], "max_abs_diff": diffs,
            "p99_abs_diff": torch.quantile(torch.cat(per_token), 0.99).item(),
            "causal_scoring_of_blocked_rollouts": wrong, **truth,
            "sampling_seconds": seconds}


def result_name(path: str) -> str:
    """The stem of a model's result files: its folder's name, or R-S for runs/R/S/model."""
    p = Path(path)
    return f"{p.parent.parent.name}-{p.parent.name}" if p.name == "model" else p.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model directory (default: prepared SmolLM2)")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--unpacked", action="store_true", help="the engine with packed_linears="
                    "False (as before issue 23); the files get the suffix _unpacked")
    args = ap.parse_args()
    path = args.model or str(prepared_dir())
    questions = [r.question for r in load_dataset("gsm8k", split="test")[:args.prompts]]
    rows = [run(path, d, questions, args.max_tokens, packed=not args.unpacked)
            for d in (torch.float32, torch.float64)]
    name = result_name(path) + ("_unpacked" if args.unpacked else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"exactness_{name}.json").write_text(json.dumps(
        {"model": path, "runs": rows}, indent=2) + "\n")
    lines = [f"# Engine vs trainer log-probs: {path}", "",
             "| dtype | tokens per rollout | blocks | max abs diff per rollout | "
             "p99 abs diff per token | p99 vs a float64 trainer: engine / trainer | "
             "causal scoring of blocked rollouts |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['tokens']} | {r['blocks']} | "
                     + ", ".join(f"{d:.1e}" for d in r["max_abs_diff"])
                     + f" | {r['p99_abs_diff']:.1e} | "
                     + (f"{r['engine_vs_float64_p99']:.1e} / {r['trainer_vs_float64_p99']:.1e}"
                        if "engine_vs_float64_p99" in r else "–") + " | "
                     + (", ".join(f"{d:.2f}" for d in r["causal_scoring_of_blocked_rollouts"])
                        or "–") + " |")
    table = "\n".join(lines) + "\n"
    (RESULTS / f"exactness_{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
