"""The grid comparison from per-sample rows, and the strategy-evolution tallies (hand cases)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parallel_r1.errors import DataError
from parallel_r1.eval.analysis import block_tallies, last_chunks
from parallel_r1.eval.grid_report import ArmRuns, cell_matrices, compare_arms, evolution

EXPLORE = "2*3=6\n<Parallel><Path>\n6-1=5\n</Path><Path>\n6-2=4\n</Path></Parallel>\n" \
          "<Summary>\n4 is even\n</Summary>\nFinal Answer: 4"
VERIFY = "2*3=6\n<Parallel><Path>\n6-3=3\n</Path><Path>\n2*3=6\n</Path></Parallel>\n" \
         "<Summary>\nok\n</Summary>\nFinal Answer: 6"


def rows(correct: list[list[bool]], blocks: bool = False, bench: str = "synthetic-trap1"):
    """Rows of one seed's eval: correct[problem][sample]."""
    return [{"run": "model", "benchmark": bench, "problem_id": f"p{i}", "problem_index": i,
             "sample": j, "correct": c, "structure": {"has_valid_block": blocks}}
            for i, problem in enumerate(correct) for j, c in enumerate(problem)]


def test_cell_matrices_by_hand():
    m = cell_matrices([rows([[1, 0], [0, 0]]), rows([[1, 1], [0, 1]], blocks=True)])
    cells = m["synthetic-trap1"]
    assert cells["k"] == 2 and cells["problems"] == ["p0", "p1"]
    np.testing.assert_array_equal(cells["mean"], [[0.5, 0.0], [1.0, 0.5]])
    np.testing.assert_array_equal(cells["pass"], [[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(cells["ratio"], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(DataError, match="differ across seeds"):
        cell_matrices([rows([[1, 0], [0, 0]]), rows([[1, 0]])])


def test_compare_arms_pairs_and_refuses_unpaired_arms():
    base = cell_matrices([rows([[1, 0], [0, 0]]), rows([[1, 1], [0, 0]])])
    arm = cell_matrices([rows([[1, 1], [0, 1]]), rows([[1, 1], [1, 0]])])
    out = compare_arms({"base": base, "arm": arm}, "base")
    entry = out["arms"]["arm"]
    # Mean@2 cells: base [[.5, 0], [1, 0]] -> 0.375; arm [[1, .5], [1, .5]] -> 0.75
    assert entry["bench"]["synthetic-trap1"]["mean"]["value"] == pytest.approx(0.75)
    assert entry["delta_avg"]["value"] == pytest.approx(0.375)
    assert entry["per_seed_avg"] == pytest.approx([0.75, 0.75])
    assert out["benchmarks"]["synthetic-trap1"]["title"] == "Trap-L1"
    other = cell_matrices([rows([[1, 1]]), rows([[1, 1]])])
    with pytest.raises(DataError, match="not evaluated like the baseline"):
        compare_arms({"base": base, "other": other}, "base")


def test_last_chunks_keeps_a_resumed_step_once():
    def step(s: int, tag: str) -> list[dict]:  # 2 prompts x 2 completions
        return [{"step": s, "prompt": p, "i": f"{tag}{s}{p}{j}"} for p in "ab" for j in (0, 1)]

    # killed after dumping step 3; resumed from the checkpoint at step 2: steps 3 and 4 again
    dump = step(1, "x") + step(2, "x") + step(3, "x") + step(3, "y") + step(4, "y")
    assert last_chunks(dump) == step(1, "x") + step(2, "x") + step(3, "y") + step(4, "y")
    dump = step(1, "x") + step(2, "x") + step(3, "x") + step(2, "y") + step(3, "y")
    assert last_chunks(dump) == step(1, "x") + step(2, "y") + step(3, "y")
    assert last_chunks(step(1, "x")) == step(1, "x")


def test_block_tallies_and_evolution_by_hand(tmp_path):
    tallies = block_tallies([{"step": 1, "response": EXPLORE}, {"step": 1, "response": VERIFY},
                             {"step": 1, "response": "Final Answer: 3"}])
    t = tallies[1]
    assert t["exploration"] == (1.0, 2) and t["verification"] == (1.0, 2)
    assert t["parallel"] == (2.0, 3)
    assert t["position"][1] == 2 and t["position"][0] == pytest.approx(
        2 * len("2*3=6\n") / len(EXPLORE) * 0 + len("2*3=6\n") / len(EXPLORE)
        + len("2*3=6\n") / len(VERIFY))
    # Two stages: steps 1-2 on one level, 3-4 on another; early/late thirds of the last phase.
    stages = []
    for name, texts in (("easy", [EXPLORE, EXPLORE]), ("hard", [EXPLORE, VERIFY])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "rollouts.jsonl").write_text("".join(
            json.dumps({"step": s + 1, "response": x}) + "\n" for s, x in enumerate(texts)))
        stages.append((folder, 2, f"synthetic:trap{1 if name == 'easy' else 3}:100:7"))
    ev = evolution(ArmRuns("a", "A", {}, {0: stages}))
    assert ev["phase"] == [3, 4] and ev["boundaries"] == [3]
    assert ev["shift"]["verification"]["early"]["value"] == 0.0
    assert ev["shift"]["verification"]["late"]["value"] == 1.0
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "rollouts.jsonl").write_text(json.dumps({"step": 1, "response": "1"}) + "\n")
    assert evolution(ArmRuns("b", "B", {}, {0: [(plain, 1, "x")]})) is None
