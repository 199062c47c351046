"""What a rerun finds after a kill: stale temporaries, a checkpoint cut short, logs past the
checkpoint (issue 12 items 2 and 3). The stage itself is a stub: these are the runner's duties."""

from __future__ import annotations

import json
import struct
import zipfile

import pytest

RECIPE = """name: hygiene
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: sft, data: "synthetic:1:4:0", template: none, max_steps: 6, save_steps: 2}}
"""


def write_checkpoint(path, step: int, *, state: str | None = None, cut: int = 0) -> None:
    """A checkpoint as the Trainer writes it (weights, optimizer, trainer_state.json last)."""
    path.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    weights = struct.pack("<Q", len(header)) + header + b"\0" * 8
    (path / "model.safetensors").write_bytes(weights[:len(weights) - cut])
    with zipfile.ZipFile(path / "optimizer.pt", "w") as archive:
        archive.writestr("data.pkl", b"x")
    text = json.dumps({"global_step": step}) if state is None else state
    (path / "trainer_state.json").write_text(text)


def killed_run(tmp_path, broken: dict) -> tuple:
    """A run dir as a kill during step 5 or 6 leaves it; `broken` spoils checkpoint-6."""
    out = tmp_path / "run"
    stage = out / "0-sft"
    for step in (2, 4):
        write_checkpoint(stage / f"checkpoint-{step}", step)
    write_checkpoint(stage / "checkpoint-6", 6, **broken)
    (out / "state.json").write_text(json.dumps(
        {"stages": {"sft": {"status": "running", "kind": "sft", "runs": 1}}}))
    (out / ".parallel-r1.lock").write_text("")  # a killed run leaves its writer lock
    rows = [{"step": s, "loss": 1.0 / s} for s in range(1, 7)] + [{"step": 6, "train_runtime": 9}]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)
                                         + '{"step": 7, "lo')
    dumps = [{"step": s, "index": i, "response": "r"} for s in range(1, 7) for i in range(2)]
    (stage / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dumps))
    (stage / ".model.parallel-r1-tmp-4242-0badc0de").mkdir()
    (stage / ".model.parallel-r1-tmp-4242-0badc0de" / "model.safetensors").write_bytes(b"0" * 9)
    (out / ".state.json.parallel-r1-tmp-x1y2z3").write_text("{")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(out=out))
    return recipe, stage


@pytest.mark.parametrize("broken, reason", [
    ({"state": ""}, "trainer_state.json does not parse"),
    ({"state": '{"global_step": 6, "log_hi'}, "trainer_state.json does not parse"),
    ({"cut": 3}, "model.safetensors: 74 bytes, the header describes 77"),
])
def test_rerun_cleans_up_falls_back_and_trims_the_logs(tmp_path, monkeypatch, capsys, broken,
                                                       reason):
    from parallel_r1.train import recipe as recipes
    from parallel_r1.train import runner

    path, stage = killed_run(tmp_path, broken)
    seen = {}

    def run_stage(recipe, stage_spec, stage_dir, source, resume):
        seen["resume"] = resume
        seen["metrics"] = [json.loads(x) for x in (stage_dir / "metrics.jsonl").open()]
        seen["rollouts"] = [json.loads(x) for x in (stage_dir / "rollouts.jsonl").open()]
        seen["hidden"] = sorted(p.name for p in stage_dir.parent.rglob(".*") if
                                p.name not in (".parallel-r1.lock", ".parallel-r1-output"))
        return {"model": str(stage_dir / "model")}

    monkeypatch.setattr(runner, "run_stage", run_stage)
    state = runner.run(recipes.load(path))
    err = capsys.readouterr().err
    assert seen["resume"] == str(stage / "checkpoint-4")
    line = next(x for x in err.splitlines() if "checkpoint-6 is incomplete" in x)
    assert line.startswith(f"[parallel-r1] {stage / 'checkpoint-6'} is incomplete ({reason}")
    assert line.endswith("removed it, falling back to checkpoint-4")
    assert not (stage / "checkpoint-6").exists()
    assert [r["step"] for r in seen["metrics"]] == [1, 2, 3, 4]  # no summary, no torn tail
    assert [(r["step"], r["index"]) for r in seen["rollouts"]] == [
        (s, i) for s in range(1, 5) for i in range(2)]
    assert seen["hidden"] == []  # the stale model copy and state temp file are gone
    assert "left half-written by a killed run" in err
    assert state["stages"]["sft"]["status"] == "done"


def test_a_stage_restarted_from_scratch_starts_with_empty_logs(tmp_path, monkeypatch):
    from parallel_r1.train import recipe as recipes
    from parallel_r1.train import runner

    path, stage = killed_run(tmp_path, {"state": ""})
    for step in (2, 4):
        (stage / f"checkpoint-{step}" / "trainer_state.json").write_text("")
    seen = {}
    monkeypatch.setattr(runner, "run_stage", lambda r, s, d, src, resume: seen.update(
        resume=resume, metrics=(d / "metrics.jsonl").read_text()) or {})
    runner.run(recipes.load(path))
    assert seen == {"resume": None, "metrics": ""}
    assert not list(stage.glob("checkpoint-*"))


def test_a_checkpoint_of_the_last_step_is_loaded_not_trained_again(tmp_path, monkeypatch):
    """Killed while the final model was saved: resuming the Trainer at max_steps would run one
    optimiser step too many, so the weights come from the checkpoint itself."""
    import torch

    from parallel_r1.models.tiny import build_tiny
    from parallel_r1.train import recipe as recipes
    from parallel_r1.train import runner, stages

    out = tmp_path / "run"
    stage = out / "0-sft"
    ckpt = stage / "checkpoint-6"
    trained, tok = build_tiny(7, num_layers=2, hidden=64)  # the recipe's tiny shape, other seed
    trained.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 6, "max_steps": 6}))
    summary = {"step": 6, "train_runtime": 1.5, "train_loss": 0.25}
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
        *({"step": s, "loss": 1.0} for s in range(1, 7)), summary)))
    (out / "state.json").write_text(json.dumps({"stages": {"sft": {"status": "running"}}}))
    (out / ".parallel-r1.lock").write_text("")  # a killed run leaves its writer lock
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(out=out))
    monkeypatch.setattr(stages, "run_sft", lambda *a: pytest.fail("trained again"))
    state = runner.run(recipes.load(path))
    assert state["stages"]["sft"]["metrics"] == {"train_runtime": 1.5, "train_loss": 0.25}
    saved = type(trained).from_pretrained(stage / "model")
    for name, value in trained.state_dict().items():
        assert torch.equal(value, saved.state_dict()[name]), name
    rows = [json.loads(x) for x in (stage / "metrics.jsonl").open()]
    assert rows[-1] == summary and len(rows) == 7  # the summary of the finished training stays


def test_a_finished_stage_with_changed_settings_is_named_not_silently_kept(tmp_path, monkeypatch,
                                                                           capsys):
    """Rerunning a finished run with another setting: the finished stage is kept (never redone
    silently) and one line names the change and the fix; a plain rerun says nothing is left."""
    from parallel_r1.train import recipe as recipes
    from parallel_r1.train import runner

    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "run"))
    calls = []
    monkeypatch.setattr(runner, "run_stage", lambda *a: calls.append(a[1].name) or {})
    runner.run(recipes.load(path))
    capsys.readouterr()
    runner.run(recipes.load(path))
    err = capsys.readouterr().err
    assert "every stage is done; nothing to run" in err and "recipe changed" not in err
    runner.run(recipes.load(path, ["stages.sft.max_steps=8"]))
    err = capsys.readouterr().err
    assert "stage sft is done and is kept as it ran" in err, err
    assert "max_steps 6 -> 8" in err and "give it a new output folder: output_dir=DIR" in err
    runner.run(recipes.load(path, ["stages.sft.max_steps=8"]), out_option="--out DIR")
    err = capsys.readouterr().err  # `demo` names its own option (issue 22 review)
    assert "give it a new output folder: --out DIR" in err and "output_dir" not in err, err
    assert calls == ["sft"]
