"""The eval / analyze / compare commands (the demo itself: test_demo_output.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parallel_r1.cli import app

runner = CliRunner()


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
