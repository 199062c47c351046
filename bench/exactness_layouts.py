"""Engine = trainer for every layout, with figures: the largest |engine log-prob - trainer
log-prob| over all completion tokens, in float64 and float32, for 2..6 paths, and the negative
controls (threads rollouts scored with the structured mask; structured rollouts scored causally).

    .venv/bin/python bench/exactness_layouts.py

The tiny random model is nudged to write tags (a fixed bias on their logits), so rollouts hold
several blocks. The trainer side is one forward over `structure.batch_packed`, read at each
token's predictor, as `train.grpo` does. Writes bench/results/exactness_layouts.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from parallel_r1.engine.torch_engine import TorchEngine
from parallel_r1.engine.types import ParallelParams, SamplingParams
from parallel_r1.format.tags import TagIds
from parallel_r1.models.tiny import build_tiny
from parallel_r1.structure import batch_packed

RESULTS = Path(__file__).resolve().parent / "results"
TEXTS = ["What is 2+3?", "Hello there, compute 17 + 25 please", "x", "Solve step by step: 6 * 7"]


def nudged(dtype: torch.dtype):
    model, tok = build_tiny(seed=0)
    tags = TagIds.from_tokenizer(tok)
    bias = torch.zeros(model.config.vocab_size, dtype=dtype)
    for name, value in dict(parallel_open=3.5, path_close=3.5, path_open=2.0,
                            parallel_close=2.0).items():
        bias[getattr(tags, name)] = value
    model = copy.deepcopy(model).to(dtype)
    model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    return model, tok, tags


@torch.no_grad()
def trainer_logprobs(model, tags, rollout, layout: str) -> torch.Tensor:
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids])  # [1, T]
    batch = batch_packed(ids, torch.ones_like(ids), tags, len(rollout.prompt_ids), layout=layout,
                         dtype=model.dtype)
    logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                   attention_mask=batch.attention_mask).logits[0]  # [T', V]
    logp = logits.to(torch.float64).log_softmax(-1)[batch.predictor[0, len(rollout.prompt_ids):]]
    return logp.gather(-1, torch.tensor(rollout.completion_ids)[:, None])[:, 0]  # [T_c]


def gaps(model, tags, rollouts, layout: str) -> list[float]:
    return [(trainer_logprobs(model, tags, r, layout) - torch.tensor(
        r.logprobs, dtype=torch.float64)).abs().max().item() for r in rollouts]


def run(dtype: torch.dtype, mode: str, paths: int, packed: bool = True) -> dict:
    model, tok, tags = nudged(dtype)
    params = SamplingParams(max_tokens=140, n=3, seed=paths, parallel=ParallelParams(
        mode=mode, num_paths=paths, max_path_tokens=12))
    engine = TorchEngine(model, tok, packed_linears=packed)
    rollouts = engine.generate([tok.encode(t) for t in TEXTS], params)
    row = {"dtype": str(dtype).removeprefix("torch."), "layout": mode, "paths": paths,
           "rollouts": len(rollouts), "blocks": sum(r.num_blocks for r in rollouts),
           "tokens": sum(len(r.completion_ids) for r in rollouts),
           "max_abs_diff": max(gaps(model, tags, rollouts, mode))}
    wrong = "structured" if mode == "threads" else "causal"
    control = gaps(model, tags, [r for r in rollouts if r.num_blocks], wrong)
    row.update({"control_layout": wrong, "control_min": min(control),
                "control_max": max(control)})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--unpacked", action="store_true", help="the engine with packed_linears="
                    "False (as before issue 23); writes exactness_layouts_unpacked.*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [run(dtype, mode, p, packed=not args.unpacked) for dtype in (torch.float64,
                                                                         torch.float32)
            for mode in ("threads", "structured") for p in range(2, 7)]
    RESULTS.mkdir(exist_ok=True)
    stem = "exactness_layouts" + ("_unpacked" if args.unpacked else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# Engine = trainer per layout (tiny model, all completion tokens)", "",
             "| dtype | layout | paths | rollouts | blocks | tokens | max abs diff | control "
             "(scored as) | control max diff per rollout, min..max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['layout']} | {r['paths']} | {r['rollouts']} | "
                     f"{r['blocks']} | {r['tokens']} | {r['max_abs_diff']:.1e} | "
                     f"{r['control_layout']} | {r['control_min']:.3f} .. "
                     f"{r['control_max']:.3f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
