"""LoRA through the recipe: SFT and RL train adapters on the linear layers, then merge back."""

from __future__ import annotations

import torch

RECIPE = """
name: lora
output_dir: {out}
model: {{name: tiny, lora_r: 4}}
stages:
  - {{kind: sft, data: "synthetic:1:8:0", template: none, learning_rate: 1.0e-2,
      per_device_batch_size: 4, max_steps: 2, save_steps: 10}}
  - {{kind: rl, data: "synthetic:1:8:3", template: none, learning_rate: 1.0e-2,
      reward: accuracy_add_parallel_reward, grader: paper, per_device_batch_size: 32,
      num_generations: 4, max_steps: 1, save_steps: 10, max_tokens: 40, max_path_tokens: 8,
      lr_scheduler_type: constant, warmup_ratio: 0.0}}
"""


def test_lora_recipe_trains_adapters_then_merges(tmp_path):
    from parallel_r1.models import build_tiny, load
    from parallel_r1.train.recipe import load as load_recipe
    from parallel_r1.train.runner import run

    path = tmp_path / "lora.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "run"))
    state = run(load_recipe(path))
    assert state["stages"]["rl"]["metrics"]["train_loss"] != 0  # some group's rewards differed
    base, _ = build_tiny(0)
    previous = base.model.layers[0].self_attn.q_proj.weight
    for stage in ("sft", "rl"):
        merged, _ = load(state["stages"][stage]["model"])
        emb, emb0 = merged.get_input_embeddings().weight, base.get_input_embeddings().weight
        assert torch.equal(emb, emb0)  # the embedding table (tied head) stays frozen
        q = merged.model.layers[0].self_attn.q_proj.weight
        assert not torch.equal(q, previous)  # each stage's adapter was merged into the weights
        previous = q
        assert not any("lora" in n for n, _ in merged.named_parameters())
