"""`eval.analysis`: the block-role classifier on hand-written blocks, and a run-dir report."""

from __future__ import annotations

import json

import pytest

from parallel_r1.data.synthetic import generate
from parallel_r1.errors import DataError
from parallel_r1.eval.analysis import (
    analyze_run,
    block_roles,
    classify_block,
    jaccard,
    numbers,
    path_similarity,
)

EXPLORE = (
    "She has 16 eggs and eats 3, bakes with 4.\n"
    "<Parallel><Path>\n16-3-4=9 eggs are left.\n</Path><Path>\n3+4=7 used, 16-7=9.\n</Path>"
    "</Parallel>\n<Summary>\nBoth give 9 eggs.\n</Summary>\nShe earns 9*2=18 dollars.\n"
    "Final Answer: 18")
VERIFY = (
    "16-3-4=9 eggs are left, so she earns 9*2=18 dollars.\n"
    "<Parallel><Path>\nCheck: 7 eggs used, 16-7=9, and 9*2 = 18.\n</Path><Path>\n"
    "2*16-2*7 = 32-14 = 18.\n</Path></Parallel>\n<Summary>\nBoth confirm 18.\n</Summary>\n"
    "Final Answer: 18")


def test_numbers_are_normalised():
    assert numbers("1,000 apples cost $18.50, then -3 and 2.0") == ["1000", "18.5", "-3", "2"]
    # a minus after a number, a letter or a bracket is an operator, not a sign
    assert numbers("40-38=2, x-1, (7)-2, [3]-1, = -5") == \
        ["40", "38", "2", "1", "7", "2", "3", "1", "-5"]


def test_numbers_on_either_side_of_a_tag_stay_apart():
    """`7</Path><Path>2` is 7 and 2: read as 72, a path result 72 would count as stated."""
    before = "<Parallel><Path>\n3+4=7</Path><Path>2\n</Path></Parallel>\n"
    assert classify_block(before, ["70+2=72"]) == "exploration"
    assert classify_block(before, ["5+2=7"]) == "verification"
    # a subtraction's result is stated, its operand's sign is not: 38 was written, -38 was not
    assert classify_block("40-38=2 are left.", ["50-12=38"]) == "verification"


def test_exploration_block_computes_a_result_not_yet_stated():
    assert block_roles(EXPLORE) == ["exploration"]
    assert classify_block("We need the total.", ["3*4=12", "4+4+4=12"]) == "exploration"


def test_verification_block_checks_a_result_already_stated():
    assert block_roles(VERIFY) == ["verification"]
    assert classify_block("So the total is 12.", ["3*4=12", "4+4+4=12"]) == "verification"


def test_mixed_and_numberless_blocks():
    # one path lands on the stated 12, the other on a new 13: still exploring
    assert classify_block("So the total is 12.", ["3*4=12", "4*4-3=13"]) == "exploration"
    assert classify_block("Let us think.", ["by symmetry", "by parity"]) == "undetermined"
    # tags and numbers inside earlier blocks count as already written
    two = VERIFY + "\n<Parallel><Path>\n18\n</Path><Path>\n9*2=18\n</Path></Parallel>"
    assert block_roles(two) == ["verification", "verification"]


def test_path_similarity_is_token_jaccard():
    assert jaccard("a b c", "a b d") == pytest.approx(2 / 4)
    text = "<Parallel><Path>a b c</Path><Path>a b d</Path></Parallel><Summary>x</Summary>"
    assert path_similarity(text) == [pytest.approx(0.5)]
    assert path_similarity("no blocks") == []


def _write_run(run_dir, num_steps=4):
    run_dir.mkdir()
    (run_dir / "rollouts").mkdir()
    records = generate(level=1, count=4, seed=0)
    with open(run_dir / "metrics.jsonl", "w") as handle:
        handle.writelines(json.dumps({"step": s, "reward": 0.1 * s, "accuracy": 0.2}) + "\n"
                          for s in range(num_steps))
    for step in range(num_steps):
        rows = []
        for i, r in enumerate(records):
            # early steps explore (synthetic teacher traces), later ones verify
            text = r.extras["trajectory"] if step < 2 else VERIFY
            rows.append({"prompt": r.question, "response": text, "reward": 1.0, "step": step,
                         "num_tokens": 40 + i})
        (run_dir / "rollouts" / f"step_{step:06d}.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in rows))


def test_analyze_run_writes_plots_and_a_report(tmp_path):
    _write_run(tmp_path / "run")
    result = analyze_run(tmp_path / "run")
    per_step = result["per_step"]
    assert sorted(per_step) == [0, 1, 2, 3]
    assert per_step[3]["reward"] == pytest.approx(0.3)  # logged metric wins
    assert per_step[0]["share_exploration"] == 1.0 and per_step[3]["share_verification"] == 1.0
    assert per_step[0]["parallel_ratio"] == 1.0
    assert per_step[0]["response_length"] == pytest.approx(41.5)
    names = {p.name for p in result["plots"]}
    assert {"reward.png", "block_position.png", "block_roles.png", "path_similarity.png"} <= names
    for p in result["plots"]:
        assert p.read_bytes()[:4] == b"\x89PNG"
    text = (tmp_path / "run" / "analysis" / "report.md").read_text()
    assert "share_verification" in text and "![block_roles](block_roles.png)" in text


def test_analyze_run_without_logs_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no metrics"):
        analyze_run(tmp_path)
    with pytest.raises(DataError, match="not found"):
        analyze_run(tmp_path / "nowhere")


def test_a_runs_output_dir_analyses_its_last_training_stage(tmp_path):
    """`analyze OUTPUT_DIR` (what `run` prints) reads the last stage that logged metrics."""
    out = tmp_path / "out"
    out.mkdir()
    _write_run(out / "1-sft", num_steps=2)
    _write_run(out / "3-rl", num_steps=4)
    (out / "4-eval-rl").mkdir()  # an eval stage logs no metrics
    result = analyze_run(out)
    assert sorted(result["per_step"]) == [0, 1, 2, 3]
    assert result["out"] == out / "3-rl" / "analysis"


def test_rows_logged_twice_count_once(tmp_path):
    from parallel_r1.eval.analysis import read_metrics, read_rollouts

    run = tmp_path / "run"
    run.mkdir()
    metrics = [{"step": s, "rollout/reward": float(s)} for s in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics * 2))
    dumps = [{"step": s, "index": i, "response": f"r{i}", "reward": 1.0}
             for s in (1, 2) for i in range(3)]
    (run / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dumps * 2))
    assert read_metrics(run) == {1: {"reward": 1.0}, 2: {"reward": 2.0}}
    assert {s: len(rows) for s, rows in read_rollouts(run).items()} == {1: 3, 2: 3}
