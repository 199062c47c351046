"""Design checks and seed-level verdicts of a grid, on run folders written here as the RL and
eval stages write them (metrics.jsonl, rollouts.jsonl, samples.jsonl)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parallel_r1.eval.grid_design import (
    arm_difference,
    chance_level,
    gate_failures,
    run_diagnostics,
)
from parallel_r1.eval.grid_report import ArmRuns, write_grid_report

GOLDS = ["1", "2", "3", "3"]  # the most common gold answer ("3") is half the problems


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rl_stage(folder, accuracy, zero_adv=0.5, clip=0.0, capped=0.0, responses=None,
              rewards=None):
    """One RL stage: a metrics record per step, and 2 rollouts per step."""
    steps = len(accuracy)
    _jsonl(folder / "metrics.jsonl", [
        {"step": s + 1, "rollout/accuracy": a, "frac_reward_zero_std": zero_adv,
         "clip_ratio/region_mean": clip, "completions/clipped_ratio": capped}
        for s, a in enumerate(accuracy)])
    responses = responses or [f"r{s}-{i}" for s in range(steps) for i in range(2)]
    rewards = rewards or [0.0] * len(responses)
    _jsonl(folder / "rollouts.jsonl", [
        {"step": 1 + j // 2, "index": j % 2, "prompt": f"p{j // 2}", "response": r, "reward": w}
        for j, (r, w) in enumerate(zip(responses, rewards))])
    return folder, steps, "synthetic:trap3:100:8"


def _eval(folder, correct, blocks=False, tag=""):
    """samples.jsonl of one seed: correct[problem] = list over 2 samples."""
    _jsonl(folder / "samples.jsonl", [
        {"run": "model", "benchmark": "synthetic-trap1", "problem_id": f"q{p}",
         "problem_index": p, "sample": j, "correct": bool(c), "answer": GOLDS[p],
         "response": f"{tag}{p}-{j}-{c}", "structure": {"has_valid_block": blocks}}
        for p, sample in enumerate(correct) for j, c in enumerate(sample)])
    return folder


def _grid(tmp_path, seeds=(0, 1, 2)):
    """base: RL on the hard level only, barely any accuracy at its start; s1 and s2: RL on the
    easy level (shared), then the hard level, where s2's rollouts are s1's (its rewards differ
    on one step); s1 and s2 answer far more than base, by a seed-dependent margin."""
    arms = {n: ArmRuns(n, n.upper(), {}, {}) for n in ("base", "s1", "s2")}
    for s in seeds:
        easy = _rl_stage(tmp_path / f"easy{s}", [0.5, 0.5])
        easy = (easy[0], easy[1], "synthetic:trap1:100:7")
        arms["base"].rl[s] = [_rl_stage(tmp_path / f"base{s}", [0.02, 0.04, 0.06, 0.5],
                                        zero_adv=0.8)]
        same = [f"x{s}-{j}" for j in range(8)]
        arms["s1"].rl[s] = [easy, _rl_stage(tmp_path / f"s1-{s}", [0.3] * 4, responses=same)]
        arms["s2"].rl[s] = [easy, _rl_stage(tmp_path / f"s2-{s}", [0.3] * 4, responses=same,
                                            rewards=[1.2] * 2 + [0.0] * 6)]
        arms["base"].evals[s] = _eval(tmp_path / f"ev-base{s}", [[1, 1], [0, 0], [0, 0], [0, 0]])
        good = [[1, 1], [1, 1], [1, 1], [int(s == 2), 0]]
        for n in ("s1", "s2"):
            arms[n].evals[s] = _eval(tmp_path / f"ev-{n}{s}", good, blocks=True, tag="s")
    return list(arms.values())


def test_run_diagnostics_read_the_last_phase_by_hand(tmp_path):
    arms = _grid(tmp_path, seeds=(0,))
    base = run_diagnostics(arms[0].rl[0])
    assert base["start_accuracy"] == pytest.approx(0.04)  # mean of the first 3 steps
    assert base["accuracy"] == pytest.approx(0.155) and base["zero_adv_share"] == 0.8
    s1 = run_diagnostics(arms[1].rl[0])
    assert s1["start_accuracy"] == pytest.approx(0.3)  # the hard level, not the easy one
    assert run_diagnostics([]) is None
    # a resumed step: its last record wins
    folder = tmp_path / "resumed"
    _jsonl(folder / "metrics.jsonl", [{"step": 1, "rollout/accuracy": 0.0},
                                      {"step": 1, "rollout/accuracy": 0.6}])
    assert run_diagnostics([(folder, 1, "d")])["start_accuracy"] == 0.6
    assert run_diagnostics([(folder, 1, "d")])["clip_fraction"] is None  # not logged


def test_chance_level_and_arm_difference_by_hand(tmp_path):
    rows = [{"problem_id": f"q{p}", "answer": g} for p, g in enumerate(GOLDS) for _ in (0, 1)]
    assert chance_level(rows) == 0.5
    arms = _grid(tmp_path, seeds=(0,))
    s1, s2 = arms[1], arms[2]
    read = [json.loads(x) for x in (s1.evals[0] / "samples.jsonl").read_text().splitlines()]
    diff = arm_difference(s1.rl[0], s2.rl[0], read, read)
    assert diff == {"rollouts_differ": 0.0, "rewards_differ": 0.25,
                    "eval_differ": 0.0}  # the last (hard) phase: 2 of its 8 rewards differ
    assert gate_failures({"min_arm_difference": 0.05},
                         {"rollouts_differ": [("s2 vs s1", 0.0)]}) == [
        "rollouts_differ of s2 vs s1 0 < 0.05"]
    assert gate_failures({"max_zero_adv_share": 0.6},
                         {"zero_adv_share": [("a", None), ("b", 0.5)]}) == [
        "zero_adv_share of a not measured"]  # a bound nobody checked does not hold


def test_report_marks_uninformative_tests_the_family_and_prints_the_design(tmp_path):
    endpoints = [{"arm": "s1", "against": "base", "column": "avg",
                  "gates": {"min_start_accuracy": 0.0}},
                 {"arm": "s2", "against": "s1", "column": "ratio", "gates": {}},
                 {"arm": "s2", "against": "base", "column": "avg", "gates": {}}]
    gates = {"min_start_accuracy": 0.1, "min_arm_difference": 0.05, "min_over_chance": 0.05}
    out = write_grid_report(tmp_path / "report", _grid(tmp_path), "base", seeds=[0, 1, 2],
                            endpoints=endpoints, gates=gates)
    by = {(c["arm"], c["against"], c["column"]): c for c in out["verdicts"]["comparisons"]}
    s1 = by[("s1", "base", "avg")]  # per seed +0.5, +0.5, +0.625: t on 2 df
    assert s1["value"] == pytest.approx(0.5417, abs=1e-4) and s1["num_seeds"] == 3
    assert s1["p"] == pytest.approx(0.005865, abs=1e-5) and s1["p_holm"] == s1["p"]
    assert s1["verdict"] == "significant after Holm" and out["verdicts"]["family_size"] == 1
    assert by[("s2", "s1", "ratio")]["verdict"].startswith(
        "uninformative (rollouts_differ of s2 vs s1 (RL rollouts) 0 < 0.05")
    assert "start_accuracy of base 0.04 < 0.1" in by[("s2", "base", "avg")]["verdict"]
    assert by[("s1", "base", "ratio")]["verdict"].startswith("uninformative")
    table = out["table"]
    assert "Design checks (before any verdict)" in table and "| S2 vs S1 | 0 | 0.0 | 25.0 | 0.0 |" in table
    assert "| constant answer (chance) | 50.0 |" in table
    assert "+54.2 [" in table and " H |" in table and " U |" in table
    assert "Smallest effect detectable at 80% power with 3 seeds" in table
    assert "uninformative" in out["report"].read_text()
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["design"]["pairs"]["s2 vs s1"]["0"]["rollouts_differ"] == 0.0


def test_one_seed_gives_no_interval(tmp_path):
    out = write_grid_report(tmp_path / "report", _grid(tmp_path, seeds=(0,)), "base", seeds=[0])
    c = next(c for c in out["verdicts"]["comparisons"] if c["column"] == "avg")
    assert c["low"] is None and c["verdict"] == "1 seed: no interval"
    assert "+50.0 (1 seed: no interval)" in out["table"]
    assert "Smallest detectable effect: none (1 seed(s)" in out["table"]
    assert not np.isnan(c["value"])


def test_arm_difference_gate_falls_back_to_eval_samples():
    from parallel_r1.eval.grid_verdicts import gate_values

    no_rl = {"rollouts_differ": None, "rewards_differ": None, "eval_differ": 0.0}
    design = {"runs": {}, "chance": {}, "pairs": {("a", "b"): {0: no_rl, 1: no_rl}}}
    assert gate_values({}, design, "a", "b", "ratio") == {
        "rollouts_differ": [("a vs b (eval samples)", 0.0)]}


def test_a_gate_on_a_diagnostic_not_measured_fails_and_an_arm_without_rl_has_none():
    from parallel_r1.eval.grid_verdicts import arm_gate_values

    logged = {"start_accuracy": 0.3, "zero_adv_share": 0.2, "clip_fraction": 0.1,
              "cap_binding": 0.0}
    design = {"runs": {"rl": {0: logged, 1: {**logged, "clip_fraction": None}},
                       "quiet": {0: {**logged, "clip_fraction": None}},
                       "sft": {0: None, 1: None}},
              "skill": {"rl": {0: {"equation_accuracy": 0.9}, 1: {"equation_accuracy": None}},
                        "quiet": {0: {"equation_accuracy": 0.8}},
                        "sft": {0: {"equation_accuracy": None}, 1: {"equation_accuracy": None}}}}
    gates = {"min_clip_fraction": 0.05, "min_equation_accuracy": 0.5}
    assert gate_failures(gates, arm_gate_values(design, "rl")) == [
        "clip_fraction of rl not measured (not logged in seed 1)",
        "equation_accuracy of rl not measured (0 equations in seed 1)"]
    assert gate_failures(gates, arm_gate_values(design, "quiet")) == [
        "clip_fraction of quiet not measured (not logged)"]
    # no RL stage: no run diagnostic applies, but its eval samples still must show arithmetic
    assert "clip_fraction" not in arm_gate_values(design, "sft")
    assert gate_failures(gates, arm_gate_values(design, "sft")) == [
        "equation_accuracy of sft not measured (0 equations)"]
    assert gate_failures({"min_clip_fraction": 0.05}, arm_gate_values(design, "sft")) == []


def test_a_grid_whose_samples_write_no_equation_fails_the_equation_gate(tmp_path):
    # the fake samples ("0-0-1") hold no equation: the gate cannot pass on nothing
    out = write_grid_report(tmp_path / "report", _grid(tmp_path), "base", seeds=[0, 1, 2],
                            gates={"min_equation_accuracy": 0.5})
    by = {(c["arm"], c["against"], c["column"]): c for c in out["verdicts"]["comparisons"]}
    assert by[("s1", "base", "avg")]["failed"] == [
        "equation_accuracy of s1 not measured (0 equations)",
        "equation_accuracy of base not measured (0 equations)"]
    assert out["verdicts"]["family_size"] == 0
