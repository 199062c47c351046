"""Named, timed phases of a step, and the engine/trainer log-prob check that needs no extra pass."""

from __future__ import annotations

import copy
import json

import pytest

from parallel_r1.train.phases import PHASES, PhaseTimer, phase_metrics, time_postfix


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nested_phases_are_exclusive():
    clock = FakeClock()
    timer = PhaseTimer(clock=clock)
    with timer.phase("forward_backward"):
        clock.now = 1.0
        with timer.phase("rollout"):
            clock.now = 4.0
            with timer.phase("reward"):
                clock.now = 4.5
        clock.now = 6.0
    clock.now = 7.0  # outside any phase: not charged
    assert timer.take() == {"forward_backward": 2.5, "rollout": 3.0, "reward": 0.5}
    assert timer.take() == {}  # reset


def test_take_charges_an_open_phase_up_to_now():
    clock = FakeClock()
    timer = PhaseTimer(clock=clock)
    timer.start("checkpoint")
    clock.now = 2.0
    assert timer.take() == {"checkpoint": 2.0}
    clock.now = 3.0
    timer.stop()
    assert timer.take() == {"checkpoint": 1.0} and timer.current is None


def test_phase_metrics_per_step_and_shares():
    out = phase_metrics({"rollout": 2.0, "forward_backward": 1.0}, wall=4.0, num_steps=2)
    assert out["time/rollout_s"] == 1.0 and out["time/forward_backward_s"] == 0.5
    assert out["time/other_s"] == 0.5 and out["time/step_s"] == 2.0
    assert out["time_share/rollout"] == 0.5 and out["time_share/other"] == 0.25
    assert all(f"time/{p}_s" in out for p in PHASES) and out["time/checkpoint_s"] == 0.0
    assert sum(out[f"time_share/{p}"] for p in [*PHASES, "other"]) == pytest.approx(1.0)
    assert time_postfix(out) == "roll 50% fwd/bwd 25% other 25%"


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trainer(model, tok, tmp_path, **kwargs):
    from test_grpo import _trainer as grpo_trainer

    return grpo_trainer(model, tok, tmp_path, **kwargs)


def test_every_step_record_splits_its_wall_time_into_phases(sft_tiny, tmp_path):
    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path, max_steps=2)
    trainer.args.save_steps = 1
    trainer.logprob_check_every = 2  # steps 1, 3, ...
    calls = []  # the phase open at each model forward outside the engine
    trainer.model.register_forward_pre_hook(lambda m, a: calls.append(trainer.phases.current))
    trainer.train()
    steps = [r for r in _rows(tmp_path / "metrics.jsonl") if "train_runtime" not in r]
    assert [r["step"] for r in steps] == [1, 2]
    for row in steps:
        parts = sum(row[f"time/{p}_s"] for p in PHASES) + row["time/other_s"]
        assert parts == pytest.approx(row["time/step_s"], rel=1e-6)
        for phase in ("rollout", "reward", "advantages", "forward_backward", "optimizer"):
            assert row[f"time/{phase}_s"] > 0, phase
        assert row["time/logprobs_s"] == 0.0  # on-policy, beta = 0: TRL runs no extra pass
    assert steps[0]["time/checkpoint_s"] == 0.0 < steps[1]["time/checkpoint_s"]
    assert steps[0]["logprob/engine_trainer_abs_diff/max"] < 1e-4
    assert "logprob/engine_trainer_abs_diff/max" not in steps[1]  # every 2 steps
    # The check is free: besides the engine's, one forward per optimiser step (the loss's).
    assert [c for c in calls if c != "rollout"] == ["forward_backward"] * 2


def test_free_check_equals_the_explicit_pass(sft_tiny, tmp_path):
    from test_grpo import _batch

    model, tok, _, _ = sft_tiny
    trainer = _trainer(copy.deepcopy(model), tok, tmp_path)
    batch = _batch(trainer)
    logged = trainer._metrics["train"]
    assert not logged.get("logprob/engine_trainer_abs_diff/max")  # nothing at generation time
    explicit = trainer.mismatch_metrics(batch)  # an extra forward pass
    trainer._step = 0  # the step's only micro-batch
    trainer.compute_loss(trainer.model, batch)  # the loss's forward, at the sampling weights
    for name, value in explicit.items():
        assert abs(logged[name][-1] - value) < 1e-6, name
    assert explicit["logprob/engine_trainer_abs_diff/max"] < 1e-4


def test_dropout_model_pays_an_eval_mode_pass(sft_tiny, tmp_path):
    model, tok, _, _ = sft_tiny
    model = copy.deepcopy(model)
    model.config.attention_dropout = 0.5
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
    trainer = _trainer(model, tok, tmp_path)
    assert not trainer.is_check_free
    trainer.train()
    row = _rows(tmp_path / "metrics.jsonl")[0]
    assert row["logprob/engine_trainer_abs_diff/max"] < 1e-4  # eval mode, as the engine samples
    assert row["time/logprob_check_s"] > 0
