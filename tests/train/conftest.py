"""A tiny model that has learned to write blocks (one short SFT run shared by the train tests)."""

from __future__ import annotations

import os

import pytest
import yaml

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

SFT_STEPS = 80


def synthetic_examples(tok, count: int, seed: int = 0, level: int = 1):
    from parallel_r1.data.synthetic import generate
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.train.sft import tokenize_example

    recs = generate(level, count, seed=seed)
    return recs, [tokenize_example(tok, render_prompt("none", r.question), r.extras["trajectory"])
                  for r in recs]


def parallel_ratio_of(model, tok, seed: int = 99, count: int = 16) -> float:
    from parallel_r1.data.synthetic import generate
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.eval.metrics import parallel_ratio
    from parallel_r1.models.load import apply_template

    held = generate(1, count, seed=seed)  # seed 99: problems the model never trained on
    prompts = [apply_template(tok, render_prompt("none", r.question)) for r in held]
    params = SamplingParams(temperature=1.0, max_tokens=120, seed=0,
                            parallel=ParallelParams(mode="structured", max_path_tokens=40))
    return parallel_ratio([r.text for r in TorchEngine(model, tok).generate(prompts, params)])


@pytest.fixture(scope="session")
def make_examples():
    """synthetic_examples(tok, count, seed=0, level=1) -> (records, tokenized examples)."""
    return synthetic_examples


@pytest.fixture(scope="session")
def sft_tiny(tmp_path_factory):
    """(model, tokenizer, ratio_before, ratio_after) after SFT_STEPS structured SFT steps."""
    from parallel_r1.models.tiny import build_tiny
    from parallel_r1.train.sft import SFTHyper, train_sft

    model, tok = build_tiny(0)
    before = parallel_ratio_of(model, tok)
    _, examples = synthetic_examples(tok, 64)
    hp = SFTHyper(learning_rate=1e-2, per_device_batch_size=8, gradient_accumulation_steps=1,
                  max_steps=SFT_STEPS, save_steps=10_000, logging_steps=40)
    model, _ = train_sft(model, tok, examples, output_dir=tmp_path_factory.mktemp("sft"), hp=hp)
    return model, tok, before, parallel_ratio_of(model, tok)


# --------------------------------------------------------------------------- a tiny grid
EVAL = {"benchmarks": "synthetic-trap1", "samples": 2, "limit": 3, "max_tokens": 24,
        "max_path_tokens": 8, "graders": ["paper"]}
RECIPE = {
    "name": "tiny", "output_dir": "unused", "seed": 0,
    "model": {"name": "tiny", "tiny_layers": 1, "tiny_hidden": 32},
    "stages": [
        {"kind": "sft", "name": "sft", "data": "synthetic:trap1:8:0", "template": "none",
         "learning_rate": 1e-3, "per_device_batch_size": 4, "max_steps": 2, "save_steps": 1},
        {"kind": "rl", "name": "rl", "data": "synthetic:trap1:8:7", "template": "none",
         "learning_rate": 1e-4, "per_device_batch_size": 4, "num_generations": 2,
         "max_steps": 2, "save_steps": 1, "max_tokens": 24, "max_path_tokens": 8,
         "dump_every": 1, "check_logprobs": False, "grader": "paper"},
        {"kind": "eval", "name": "eval", "template": "none", "eval": EVAL},
    ]}


def _write_grid(tmp_path, **extra):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(RECIPE))
    grid = {"name": "t", "output_dir": str(tmp_path / "grid"), "seeds": [0, 1],
            "baseline": "sft-only", "arms": [
                {"name": "sft-only", "recipe": "tiny.yaml", "stages": ["sft", "eval"]},
                {"name": "rl", "recipe": "tiny.yaml", "title": "SFT then RL"}], **extra}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


@pytest.fixture(scope="session")
def make_grid():
    """make_grid(tmp_path, **grid_keys) -> path of a grid file: 2 arms (SFT -> eval; SFT -> RL ->
    eval) x 2 seeds over a 1-layer tiny model with a few steps each."""
    return _write_grid
