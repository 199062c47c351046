"""Resume inside any epoch replays nothing (issue 19 case 3): a multi-epoch RL or SFT run resumed
from a checkpoint of epoch 0, 1 or 2 trains the same prompts at each step, in the same order,
with the same samples, and ends with the same weights as the run that was never stopped.

A kill right after checkpoint-k leaves exactly what an uninterrupted run has on disk at that
moment: its checkpoint-k and its logs. Each resumed run starts from a copy of those and is
driven by the runner's own resume path (`runner.run` -> `trainer.train(resume_from_checkpoint)`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from parallel_r1.outputs import OWNER_FILE

# 4 prompts, 2 per step (4 completions, 2 per prompt): 2 steps an epoch, 4 epochs in 8 steps.
RL = """name: resume-epochs
output_dir: {out}
seed: 0
model: {{name: tiny, tiny_layers: 1, tiny_hidden: 32}}
stages:
  - {{kind: rl, data: "synthetic:1:4:3", template: none, learning_rate: 1.0e-3,
      reward: "resume_rewards:length", grader: paper, per_device_batch_size: 4,
      num_generations: 2, max_steps: 8, save_steps: 1, max_tokens: 24, max_path_tokens: 8,
      dump_every: 1, check_logprobs: false}}
"""
# 6 traces, 2 per step: 3 steps an epoch, 3 epochs.
SFT = """name: resume-epochs-sft
output_dir: {out}
seed: 0
model: {{name: tiny, tiny_layers: 1, tiny_hidden: 32}}
stages:
  - {{kind: sft, data: "synthetic:1:6:0", template: none, learning_rate: 1.0e-2,
      per_device_batch_size: 2, num_epochs: 3, save_steps: 1, warmup_ratio: 0.0}}
"""


REWARD = """def length(response, gold, *, grader=None, step=0):
    return len(response) / 32.0, {}
"""


@pytest.fixture
def length_reward(tmp_path, monkeypatch):
    """A reward that tells samples apart (the tiny model never earns accuracy), so each step's
    update depends on its prompts and samples."""
    (tmp_path / "resume_rewards.py").write_text(REWARD)
    monkeypatch.syspath_prepend(str(tmp_path))


def _run(tmp_path: Path, text: str, name: str, from_run: Path | None = None,
         step: int | None = None) -> Path:
    """Run the recipe into tmp/name; returns its stage dir. With `from_run` (a stage dir), first
    leave there what a kill right after its checkpoint-`step` left (that checkpoint and the logs), so the run resumes."""
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    out = tmp_path / name
    if from_run is not None:
        stage = from_run
        (out / stage.name).mkdir(parents=True)
        shutil.copytree(stage / f"checkpoint-{step}", out / stage.name / f"checkpoint-{step}")
        for log in stage.glob("*.jsonl"):
            shutil.copy(log, out / stage.name / log.name)
        (out / OWNER_FILE).touch()  # the run dir is ours, as a killed run leaves it
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.format(out=out))
    state = run(load(path))
    assert all(s["status"] == "done" for s in state["stages"].values())
    if from_run is not None:
        assert next(iter(state["stages"].values()))["resumed_from"].endswith(f"checkpoint-{step}")
    return next(out.glob("0-*"))


def _prompts_per_step(stage: Path) -> dict[int, list[str]]:
    rows = [json.loads(x) for x in (stage / "rollouts.jsonl").read_text().splitlines()]
    out: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["step"], r["index"])):
        out.setdefault(row["step"], []).append(row["prompt"])
    return out


def _samples(stage: Path) -> dict[tuple[int, int], tuple[str, str]]:
    rows = [json.loads(x) for x in (stage / "rollouts.jsonl").read_text().splitlines()]
    return {(r["step"], r["index"]): (r["prompt"], r["response"]) for r in rows}


def _weights(stage: Path) -> str:
    return hashlib.sha256((stage / "model" / "model.safetensors").read_bytes()).hexdigest()


def _epoch_of(stage: Path, step: int) -> float:
    state = json.loads((stage / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return state["epoch"]


@pytest.mark.parametrize("sizes", ["per_device_batch_size: 4", "per_device_batch_size: 2, "
                                   "gradient_accumulation_steps: 2"], ids=["4x1", "2x2"])
def test_rl_resumed_in_epochs_1_and_2_replays_nothing(tmp_path, length_reward, sizes):
    recipe = RL.replace("per_device_batch_size: 4", sizes)  # 4 completions a step either way
    ref = _run(tmp_path, recipe, "ref")
    losses = [r["loss"] for r in map(json.loads, (ref / "metrics.jsonl").open()) if "loss" in r]
    assert any(losses), "every step's loss is 0: the weights would not depend on the prompts"
    order = _prompts_per_step(ref)
    assert sorted(order) == list(range(1, 9))
    # the order does change between epochs, else this test could not see a replayed epoch
    epochs = [tuple(tuple(order[s]) for s in (2 * e + 1, 2 * e + 2)) for e in range(4)]
    assert len(set(epochs)) > 1, epochs
    for step in (3, 4, 5):  # inside epoch 1, at its end (epoch 2 starts afresh), inside epoch 2
        assert 1 <= _epoch_of(ref, step) < 3
        resumed = _run(tmp_path, recipe, f"from-{step}", ref, step)
        assert _prompts_per_step(resumed) == order, f"resumed at checkpoint-{step}"
        assert _samples(resumed) == _samples(ref), f"resumed at checkpoint-{step}"
        assert _weights(resumed) == _weights(ref), f"resumed at checkpoint-{step}"


def test_sft_resumed_in_epochs_1_and_2_replays_nothing(tmp_path):
    ref = _run(tmp_path, SFT, "ref")
    losses = {r["step"]: r["loss"] for r in map(json.loads, (ref / "metrics.jsonl").open())
              if "loss" in r}
    assert sorted(losses) == list(range(1, 10))
    for step in (4, 8):  # epoch 1 and epoch 2, not on an epoch boundary
        assert 1 <= _epoch_of(ref, step) < 3
        resumed = _run(tmp_path, SFT, f"from-{step}", ref, step)
        again = {r["step"]: r["loss"] for r in map(json.loads, (resumed / "metrics.jsonl").open())
                 if "loss" in r}
        assert again == losses, f"resumed at checkpoint-{step}"
        assert _weights(resumed) == _weights(ref), f"resumed at checkpoint-{step}"


# ---- TRL reuses one generation for several steps (steps_per_generation, num_iterations) ------
def _gen_trainer(out: Path, *, steps_per_generation: int = 2, num_iterations: int = 1,
                 save_steps: int = 2, max_steps: int = 8):
    """8 prompts, 2 a step (G = 2), one generation per 2 steps: 4 steps an epoch."""
    from parallel_r1.data.synthetic import generate
    from parallel_r1.data.templates import render_prompt
    from parallel_r1.engine.torch_engine import TorchEngine
    from parallel_r1.engine.types import ParallelParams, SamplingParams
    from parallel_r1.models.tiny import build_tiny
    from parallel_r1.rewards import build_reward
    from parallel_r1.train.grpo import GRPOHyper, build_grpo_trainer
    from parallel_r1.train.rollout import EngineRollouts

    model, tok = build_tiny(0, num_layers=1, hidden=32)
    recs = generate(1, 8, seed=3)
    prompts = [render_prompt("none", r.question) for r in recs]
    params = SamplingParams(max_tokens=24, parallel=ParallelParams(max_path_tokens=8))
    reward = build_reward("resume_rewards:length", grader="paper")
    rollouts = EngineRollouts(TorchEngine(model, tok), tok, params, reward.score_parts,
                              {p: r.answer for p, r in zip(prompts, recs)},
                              dump_dir=str(out), dump_every=1)
    hp = GRPOHyper(learning_rate=1e-3, per_device_batch_size=4, num_generations=2,
                   steps_per_generation=steps_per_generation, max_steps=max_steps,
                   max_completion_length=24, save_steps=save_steps)
    return build_grpo_trainer(model, tok, prompts, rollouts, output_dir=out, hp=hp,
                              check_logprobs=False, num_iterations=num_iterations)


@pytest.mark.parametrize("spg, iterations, max_steps, at", [(2, 1, 8, 6), (1, 2, 12, 10)],
                         ids=["steps_per_generation=2", "num_iterations=2"])
def test_rl_reusing_generations_resumes_inside_epoch_1_exactly(tmp_path, length_reward, spg,
                                                               iterations, max_steps, at):
    import torch

    sizes = dict(steps_per_generation=spg, num_iterations=iterations, max_steps=max_steps)
    ref = _gen_trainer(tmp_path / "ref", **sizes)
    ref.train()
    rows = _samples(tmp_path / "ref")
    assert sorted({s for s, _ in rows}) == list(range(1, max_steps, 2))  # every other step
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(tmp_path / "ref" / f"checkpoint-{at}", resumed_dir / f"checkpoint-{at}")
    assert 1 < _epoch_of(resumed_dir, at) < 2
    again = _gen_trainer(resumed_dir, **sizes)
    again.train(resume_from_checkpoint=str(resumed_dir / f"checkpoint-{at}"))
    assert _samples(resumed_dir) == {k: v for k, v in rows.items() if k[0] > at}
    for (name, a), b in zip(ref.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("spg, iterations, save_steps", [(2, 1, 1), (1, 2, 1), (2, 2, 2)])
def test_checkpoints_inside_a_generations_reuse_are_refused(tmp_path, spg, iterations,
                                                             save_steps):
    with pytest.raises(ValueError, match="save_steps .* must be a multiple of "
                                         "steps_per_generation"):
        _gen_trainer(tmp_path, steps_per_generation=spg, num_iterations=iterations,
                     save_steps=save_steps)


def test_the_epoch_reaches_the_sampler_where_accelerate_does_not_forward_it():
    """Under 2 processes, a resumed epoch's skipped batches hide the sampler from accelerate's
    set_epoch; the trainer's EpochOrder callback sets it from the checkpoint's epoch."""
    from types import SimpleNamespace

    from accelerate.data_loader import prepare_data_loader, skip_first_batches
    from torch.utils.data import DataLoader

    from parallel_r1.train.prompt_order import EpochOrder, EpochRepeatSampler

    data = list(range(8))
    sampler = EpochRepeatSampler(data, mini_repeat_count=2, batch_size=2, seed=0)
    loader = prepare_data_loader(DataLoader(data, batch_size=4, sampler=sampler),
                                 num_processes=2, process_index=0, put_on_device=False)
    skip_first_batches(loader, 1).set_epoch(1)
    assert sampler.epoch == 0  # accelerate 1.15 does not reach it: why EpochOrder exists
    order = EpochOrder()
    order.sampler = sampler
    order.on_epoch_begin(None, SimpleNamespace(epoch=1.5), None)
    assert sampler.epoch == 1
    uninterrupted = EpochRepeatSampler(data, mini_repeat_count=2, batch_size=2, seed=0)
    epochs = [list(uninterrupted) for _ in range(3)]
    assert list(sampler) == epochs[1] != epochs[0]


def test_uninterrupted_order_is_trls():
    from trl.trainer.utils import RepeatSampler

    from parallel_r1.train.prompt_order import EpochRepeatSampler

    ours = EpochRepeatSampler(list(range(10)), mini_repeat_count=3, batch_size=2, repeat_count=2,
                              seed=7)
    trls = RepeatSampler(list(range(10)), mini_repeat_count=3, batch_size=2, repeat_count=2,
                         seed=7)
    assert [list(ours) for _ in range(4)] == [list(trls) for _ in range(4)]
