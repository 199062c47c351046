"""An rl stage that samples in one layout and trains in another (issue 21 item 3, the original
code's mismatch as an arm), and more than one policy update per generation (num_iterations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.recipe import load

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_sampling_threads_and_training_structured_is_accepted():
    rl = {s.name: s for s in load(RECIPES / "cpu-demo.yaml", [
        "stages.rl.mode=threads", "stages.rl.train_layout=structured",
        "stages.rl.num_iterations=2"]).stages}["rl"]
    assert (rl.mode, rl.train_layout, rl.num_iterations) == ("threads", "structured", 2)
    same = {s.name: s for s in load(RECIPES / "cpu-demo.yaml", [
        "stages.rl.train_layout=structured"]).stages}["rl"]
    assert same.train_layout == "structured"  # = mode: no mismatch, allowed


@pytest.mark.parametrize("overrides,field,message", [
    (["stages.rl.mode=causal", "stages.rl.train_layout=structured"], "train_layout",
     "sampling causal and training structured is not supported"),
    (["stages.rl.mode=threads", "stages.rl.train_layout=causal"], "train_layout",
     "supported: mode threads -> train_layout structured"),
    (["stages.rl.train_layout=sideways"], "train_layout", "must be one of"),
    (["stages.sft.train_layout=causal"], "train_layout", "only rl stages"),
    (["stages.rl.mode=threads", "stages.rl.train_layout=structured", "stages.rl.backend=vllm"],
     "train_layout", "needs backend: torch"),
    (["stages.rl.num_iterations=0"], "num_iterations", "must be >= 1"),
    (["stages.sft.num_iterations=2"], "num_iterations", "rl stages only"),
    (["stages.rl.num_iterations=3"], "save_steps", "multiple of num_iterations"),  # save 10
    (["stages.rl.num_iterations=2", "stages.rl.save_steps=2", "stages.rl.max_steps=15"],
     "max_steps", "last generation is trained on fewer times"),
])
def test_unsupported_settings_are_refused_naming_the_field(tmp_path, overrides, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        load(RECIPES / "cpu-demo.yaml", overrides)
    stage = overrides[0].split(".")[1]
    assert err.value.field == f"stages.{stage}.{field}"
    assert len(str(err.value).splitlines()) == 1


def test_the_trainer_refuses_another_layout_unless_asked_explicitly(tmp_path):
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.train.grpo import layout_of
    from parallel_r1.train.rollout import EngineRollouts

    threads = EngineRollouts(None, None, SamplingParams(parallel=ParallelParams(mode="threads")))
    with pytest.raises(ConfigError, match="sampled_layout='threads' to train on the mismatch"):
        layout_of(threads, "structured")
    assert layout_of(threads, "structured", "threads") == "structured"
    assert layout_of(threads, None) == "threads"
    with pytest.raises(ConfigError, match="threads and training causal is not supported"):
        layout_of(threads, "causal", "threads")
    with pytest.raises(ConfigError, match="samples the threads layout") as err:
        layout_of(threads, "structured", "structured")
    assert err.value.field == "sampled_layout"
    from types import SimpleNamespace

    from parallel_r1.train.grpo import _check_mismatch_backend

    vllm = SimpleNamespace(use_vllm=True, vllm_importance_sampling_correction=True)
    with pytest.raises(ConfigError, match="reweighted away"):
        _check_mismatch_backend("threads", "structured", vllm)
    _check_mismatch_backend(None, "threads", vllm)  # no mismatch: TRL's correction is welcome


# --------------------------------------------------------------------------- tiny runs
def _stage_run(tiny, tmp_path: Path, name: str, **fields):
    """Train the SFT'd tiny model (`sft_tiny`: it reads its context, which a random
    one barely does: threads vs structured differ by ~1e-4 there), made to open blocks often,
    for an rl stage's max_steps; returns (trainer, the step rows of metrics.jsonl,
    [(trainer layout, rollout layouts, blocks)] seen from inside each rollout)."""
    from parallel_r1.models.tiny import bias_tags, build_tiny
    from parallel_r1.train.recipe import ModelSpec, Recipe, Stage
    from parallel_r1.train.stages import build_rl

    # Its weights in a fresh model, not a deepcopy: TRL's fused-head patch keeps the patched
    # model's own forward in a closure, so a deepcopy's plain forward (the engine's) would run
    # the original's weights while the trainer's fused forward runs the copy's.
    model, tok = build_tiny(0)
    model.load_state_dict(tiny[0].state_dict())
    bias_tags(model, tok, parallel_open=2.0)  # blocks in most rollouts
    settings = dict(kind="rl", name="rl", data="synthetic:1:8:7", template="none",
                    reward="accuracy_parallel_reward", grader="paper", learning_rate=1e-2,
                    per_device_batch_size=4, num_generations=4, max_steps=2, save_steps=2,
                    max_tokens=48, max_path_tokens=10, num_paths=2, mode="threads")
    stage = Stage(**(settings | fields))
    recipe = Recipe(name="t", output_dir=str(tmp_path), seed=0,
                    model=ModelSpec(), stages=[stage])
    out = tmp_path / name
    trainer = build_rl(model, tok, stage, out, recipe)
    seen, generate = [], trainer.rollout_func.generate_slots

    def spy(*args, **kwargs):
        rollouts = generate(*args, **kwargs)
        seen.append((trainer.layout, {r.layout.kind for r in rollouts},
                     sum(r.num_blocks for r in rollouts)))
        return rollouts

    trainer.rollout_func.generate_slots = spy
    trainer.train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return trainer, [r for r in rows if "loss" in r], seen


def test_threads_sampled_structured_trained_logs_the_gap_and_says_so(sft_tiny, tmp_path):
    trainer, steps, seen = _stage_run(sft_tiny, tmp_path, "mismatch", train_layout="structured")
    assert seen and all(layout == "structured" and kinds == {"threads"}
                        for layout, kinds, _ in seen)
    assert sum(blocks for _, _, blocks in seen) > 0, "the model should write blocks"
    gaps = [s["logprob/layout_mismatch_abs_diff/max"] for s in steps]
    assert len(gaps) == 2 and max(gaps) > 1e-3, gaps
    assert not any("logprob/engine_trainer_abs_diff/max" in s for s in steps)
    meta = trainer.card_meta["training"]
    assert meta["train_layout"] == "structured"
    assert meta["layout_mismatch"].startswith("sampled threads, trained structured (deliberate")

    trainer, steps, seen = _stage_run(sft_tiny, tmp_path, "matched")  # the same stage, no mismatch
    assert all(layout == "threads" and kinds == {"threads"} for layout, kinds, _ in seen)
    gaps = [s["logprob/engine_trainer_abs_diff/max"] for s in steps]
    assert len(gaps) == 2 and max(gaps) < 1e-4, gaps
    assert "layout_mismatch" not in trainer.card_meta["training"]


def test_two_updates_per_generation_reuse_it_and_the_clip_can_bind(sft_tiny, tmp_path):
    trainer, steps, seen = _stage_run(sft_tiny, tmp_path, "mu2", num_iterations=2, max_steps=4,
                                      save_steps=2, learning_rate=3e-2)
    assert trainer.num_iterations == 2 and trainer.args.num_iterations == 2
    assert len(seen) == 2 and len(steps) == 4  # one generation per two optimiser steps
    assert trainer.card_meta["training"]["num_iterations"] == 2
    second = [s["clip_ratio/region_mean"] for s in steps[1::2]]  # the reuses
    assert max(second) > 0, second
    assert max(s["clip_ratio/region_mean"] for s in steps[0::2]) == 0  # ratio 1: on-policy
    # the check reads the old log-probs (the trainer's, at the sampling weights), once per
    # generation: still exact
    checked = [s.get("logprob/engine_trainer_abs_diff/max") for s in steps]
    assert all(g < 1e-4 for g in checked[0::2]) and checked[1::2] == [None, None], checked
