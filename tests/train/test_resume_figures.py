"""Logged figures after an interrupted stage is resumed equal the uninterrupted run's (issue 20
item 7): `num_tokens` goes on from the checkpoint, the summary `train_loss` covers every step."""

from __future__ import annotations

import json

import pytest

RECIPE = """name: figures
output_dir: {out}
model: {{name: tiny}}
stages: [{stage}]
"""
STAGES = {  # every step in the first epoch (the data order of later epochs is another matter)
    "sft": """{kind: sft, data: "synthetic:1:16:0", template: none, learning_rate: 1.0e-3,
              per_device_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 4,
              save_steps: 2}""",
    "rl": """{kind: rl, data: "synthetic:1:16:3", template: none, learning_rate: 1.0e-4,
             grader: paper, per_device_batch_size: 4, num_generations: 2,
             gradient_accumulation_steps: 1, max_steps: 4, save_steps: 2, max_tokens: 16,
             max_path_tokens: 6}""",
}


class Interrupted(Exception):
    """Stands in for Ctrl-C (a KeyboardInterrupt would stop pytest itself)."""


def interrupt_after(step: int):
    """A trainer callback that stops the run after `step` (checkpoint-2 is on disk by then)."""
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupted

    return Stop()


def run(tmp_path, name: str, kind: str, monkeypatch, stop_at: int | None = None) -> dict:
    from parallel_r1.train import recipe as recipes
    from parallel_r1.train import runner, stages
    from parallel_r1.train.trackers import tracker_setup

    def setup(*args):
        extra, callbacks = tracker_setup(*args)
        return extra, [*callbacks, *([interrupt_after(stop_at)] if stop_at else [])]

    monkeypatch.setattr(stages, "tracker_setup", setup)
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(out=tmp_path / name, stage=STAGES[kind]))
    return runner.run(recipes.load(path))


@pytest.mark.parametrize("kind", ["sft", "rl"])
def test_figures_after_a_resume_equal_the_uninterrupted_runs(tmp_path, monkeypatch, kind):
    whole = run(tmp_path, "whole", kind, monkeypatch)
    with pytest.raises(Interrupted):
        run(tmp_path, "cut", kind, monkeypatch, stop_at=3)
    resumed = run(tmp_path, "cut", kind, monkeypatch)
    assert resumed["stages"][kind]["resumed_from"].endswith("checkpoint-2")
    rows = {name: [json.loads(x) for x in (tmp_path / name / f"0-{kind}" / "metrics.jsonl").open()]
            for name in ("whole", "cut")}
    tokens = {name: [r["num_tokens"] for r in got if "num_tokens" in r and "train_loss" not in r]
              for name, got in rows.items()}
    assert len(tokens["whole"]) == 4 and tokens["cut"] == tokens["whole"]
    assert [r["loss"] for r in rows["cut"] if "loss" in r] == pytest.approx(
        [r["loss"] for r in rows["whole"] if "loss" in r], rel=1e-5)  # the same training
    summary = {name: next(r for r in got if "train_loss" in r) for name, got in rows.items()}
    assert summary["cut"]["train_loss"] == pytest.approx(summary["whole"]["train_loss"], rel=1e-5)
    recorded = {k: v["stages"][kind]["metrics"]["train_loss"] for k, v in
                (("whole", whole), ("cut", resumed))}
    assert recorded["cut"] == pytest.approx(recorded["whole"], rel=1e-5)  # state.json too
