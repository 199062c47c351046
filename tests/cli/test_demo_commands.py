"""`parallel-r1 demo --quick` end to end, and the eval / analyze / compare commands."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parallel_r1.cli import app

runner = CliRunner()


def test_demo_quick_runs_every_stage_and_reports_where_things_are(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = out / "run"
    for stage in ("0-eval-base", "2-eval-sft", "4-eval-rl"):
        assert (run / stage / "summary.json").exists()
        assert (run / stage / "samples.jsonl").exists()
    table = (out / "table.md").read_text()
    assert "| 0-eval-base |" in table and "| 4-eval-rl |" in table
    assert "Synth-L1 Mean@2 / Pass@2" in table
    pngs = sorted(p.name for p in (out / "analysis").glob("*.png"))
    assert {"reward.png", "parallel_ratio.png", "block_position.png"} <= set(pngs)
    steps = [json.loads(r)["step"] for r in (run / "3-rl" / "metrics.jsonl").open()]
    assert max(steps) == 2
    state = json.loads((run / "state.json").read_text())
    assert all(s["status"] == "done" and s["runs"] == 1 for s in state["stages"].values())
    assert str(out / "table.md") in result.output and "analysis" in result.output
    again = runner.invoke(app, ["demo", "--quick", "--out", str(out)])  # resumes: nothing to redo
    assert again.exit_code == 0, again.output
    state = json.loads((run / "state.json").read_text())
    assert all(s["runs"] == 1 for s in state["stages"].values())


def test_eval_analyze_compare_commands(tmp_path):
    ev = tmp_path / "ev"
    result = runner.invoke(app, ["eval", "tiny", "--benchmarks", "synthetic-l2", "--limit", "2",
                                 "--samples", "2", "--max-tokens", "10", "--out", str(ev)])
    assert result.exit_code == 0, result.output
    assert "Synth-L2 Mean@2 / Pass@2" in result.output
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "rollout/accuracy": 0.5}) + "\n")
    result = runner.invoke(app, ["analyze", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "analysis" / "accuracy.png").exists()
    result = runner.invoke(app, ["compare", str(ev), str(run), "--out", str(tmp_path / "t.md")])
    assert result.exit_code == 0, result.output
    assert "| ev |" in result.output and (tmp_path / "t.md").exists()
