"""`parallel-r1 demo --quick` as a user runs it (a subprocess, its real output): every stage and
file, quiet output, TensorBoard events from `report_to`, and the model cards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.cli.output import QUIET_ENV

# Besides Python's own defaults, show DeprecationWarnings raised by our modules.
LAUNCH = ("import warnings; warnings.filterwarnings('default', category=DeprecationWarning, "
          "module='parallel_r1'); from parallel_r1.cli import main; main()")
NOISE = re.compile(r"FutureWarning|DeprecationWarning|Writing model shards|Loading weights")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    drop = ("PYTHONWARNINGS", "PARALLEL_R1_VERBOSE", *QUIET_ENV)  # a user's plain environment
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(out dir, completed process) of one quick demo reporting to TensorBoard."""
    out = tmp_path_factory.mktemp("demo")
    trackers = ["report_to=tensorboard"] if _has_tensorboard() else []
    proc = run_cli("demo", "--quick", "--out", str(out), *trackers)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


def _has_tensorboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def test_demo_quick_runs_every_stage_and_reports_where_things_are(demo):
    out, proc = demo
    run = out / "run"
    for stage in ("0-eval-base", "2-eval-sft", "4-eval-rl"):
        assert (run / stage / "summary.json").exists()
        assert (run / stage / "samples.jsonl").exists()
    table = (out / "table.md").read_text()
    assert "| 0-eval-base |" in table and "| 4-eval-rl |" in table
    assert "Synth-L1 Mean@2 / Pass@2" in table
    pngs = sorted(p.name for p in (out / "analysis").glob("*.png"))
    assert {"reward.png", "parallel_ratio.png", "block_position.png", "phase_time.png"} <= set(pngs)
    rows = [json.loads(r) for r in (run / "3-rl" / "metrics.jsonl").open()]
    assert max(r["step"] for r in rows) == 2
    assert all(r["time/rollout_s"] > 0 for r in rows if "train_runtime" not in r)
    state = json.loads((run / "state.json").read_text())
    assert all(s["status"] == "done" and s["runs"] == 1 for s in state["stages"].values())
    assert str(out / "table.md") in proc.stdout and "analysis" in proc.stdout
    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])  # nothing to redo
    assert again.exit_code == 0, again.output
    state = json.loads((run / "state.json").read_text())
    assert all(s["runs"] == 1 for s in state["stages"].values())


def test_demo_output_is_quiet(demo):
    _, proc = demo
    text = proc.stdout + proc.stderr
    assert not NOISE.findall(text), [ln for ln in text.splitlines() if NOISE.search(ln)]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]  # each bar redraw is a line
    # Every stderr line is a stage line or one of the stage's own progress displays.
    assert all(ln.startswith(("[parallel-r1]", "eval:", "SFT:", "GRPO:")) for ln in lines), lines
    for bar in ("SFT:", "GRPO:"):  # one display per training stage, nothing inside it
        at = [i for i, ln in enumerate(lines) if ln.startswith(bar)]
        assert at == list(range(at[0], at[-1] + 1)), bar
        assert sum(ln.startswith(f"{bar}   0%") for ln in lines) == 1, bar
    assert "time=roll" in proc.stderr  # the step's time shares in the bar's postfix


def test_demo_reports_to_tensorboard(demo):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = demo
    for stage, tags in (("1-sft", ["train/loss", "train/time/forward_backward_s"]),
                        ("3-rl", ["train/rollout/reward", "train/filter/dropped_groups",
                                  "train/time/rollout_s", "train/time_share/forward_backward",
                                  "train/logprob/engine_trainer_abs_diff/p99"])):
        events = EventAccumulator(str(out / "run" / stage / "tensorboard"))
        events.Reload()
        scalars = set(events.Tags()["scalars"])
        assert set(tags) <= scalars, sorted(scalars)
    steps = [e.step for e in events.Scalars("train/time/rollout_s")]
    assert steps == [1, 2]


def test_saved_models_carry_our_card(demo):
    from huggingface_hub import ModelCard

    out, _ = demo
    run = out / "run"
    assert not (run / "3-rl" / "README.md").exists()  # TRL's default card is not written
    for stage, kind in (("1-sft", "sft"), ("3-rl", "grpo")):
        for folder in (run / stage / "model", *sorted((run / stage).glob("checkpoint-*"))):
            card = ModelCard.load(folder / "README.md")
            data = card.data.to_dict()
            assert data["library_name"] == "transformers" and kind in data["tags"], folder
            assert "parallel-r1 serve MODEL_DIR --mode structured" in card.text
            assert "fine-tuned version of [None]" not in card.text
    sft = ModelCard.load(run / "1-sft" / "model" / "README.md")
    assert "## Evaluation (eval-sft)" in sft.text and "| eval-sft |" in sft.text
    results = sft.data.to_dict()["model-index"][0]["results"]
    assert results[0]["dataset"]["type"] == "synthetic-l1"


def test_eval_of_the_demos_models_with_no_flags_gives_the_demos_table(demo, tmp_path,
                                                                      monkeypatch):
    """Issue 22: `eval MODEL` alone takes the model's template, layout and last eval (the demo
    evaluates in template `none`; the old default `parallel` scored ~0), and the two stages'
    `model` folders get two output folders."""
    out, _ = demo
    monkeypatch.setenv("PARALLEL_R1_EVAL_DIR", str(tmp_path))
    for stage, measured in (("3-rl", "4-eval-rl"), ("1-sft", "2-eval-sft")):
        result = CliRunner().invoke(app, ["eval", str(out / "run" / stage / "model")])
        assert result.exit_code == 0, result.output
        (folder,) = tmp_path.glob(f"cpu-demo-{stage[2:]}-*")
        mine, theirs = (json.loads((d / "summary.json").read_text())["benchmarks"]
                        for d in (folder, out / "run" / measured))
        assert mine == theirs  # every figure, Mean@k included
        assert (folder / "samples.jsonl").read_text().count("\n") == 8


@pytest.mark.slow
def test_verbose_shows_the_third_party_notices_quiet_hides(tmp_path):
    from parallel_r1.cli.output import NOISE as FILTERED

    proc = run_cli("demo", "--quick", "--verbose", "--out", str(tmp_path),
                   "stages.rl.activation_checkpointing=true")  # TRL then toggles it
    assert proc.returncode == 0, proc.stderr
    for _, message, _ in FILTERED:  # each filter hides something real
        assert re.search(message, proc.stderr), message
    assert "Writing model shards" in proc.stderr


def test_verbose_is_accepted_before_or_after_the_command():
    for args in (("--verbose", "version"), ("version", "--verbose")):
        proc = run_cli(*args)
        assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
