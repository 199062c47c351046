"""The `claims:` of a grid file, checked before anything runs: each error names its field."""

from __future__ import annotations

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.grid import load_grid, plan

TREND = {"claim": "RL's ratio falls", "arm": "rl", "trend": "ratio", "direction": "falls"}
MORE = {"claim": "RL > SFT", "arm": "rl", "column": "avg", "direction": ">"}
NI = {"claim": "RL >= SFT", "arm": "rl", "column": "avg", "direction": ">=", "margin": 0.02}


def test_claims_are_completed_and_their_comparisons_join_the_endpoints(tmp_path, make_grid):
    from parallel_r1.eval.grid_claims import with_claims

    grid = load_grid(make_grid(tmp_path, claims=[TREND, MORE, NI]))
    assert grid.claims[0] == {**TREND, "gates": {}}
    assert grid.claims[1] == {**MORE, "against": "sft-only", "margin": None, "gates": {}}
    assert grid.endpoints == []  # the file's own endpoints are left as written
    assert with_claims(grid.endpoints, grid.claims) == [
        {"arm": "rl", "against": "sft-only", "column": "avg", "gates": {}}]  # once


@pytest.mark.parametrize(("claims", "field", "message"), [
    ("all", "claims", "must be a list of claims"),
    ([["rl"]], "claims.0", "a claim is {claim, arm"),
    ([{"arm": "rl", "trend": "ratio", "direction": "falls"}], "claims.0", "a claim is"),
    ([{**TREND, "column": "avg"}], "claims.0", r"unknown key\(s\) \['column'\]"),
    ([{**MORE, "trend": "ratio"}], "claims.0", r"unknown key\(s\)"),
    ([{**TREND, "claim": " "}], "claims.0.claim", "the claim in words"),
    ([TREND, {**TREND, "direction": "down"}], "claims.1.direction", "'rises', 'falls'"),
    ([{**MORE, "direction": "=>"}], "claims.0.direction", "'>', '>='"),
    ([{**TREND, "arm": "nope"}], "claims.0.arm", "names no arm"),
    ([{**TREND, "trend": "length"}], "claims.0.trend", "'ratio', 'position'"),
    ([{**TREND, "gates": {"min_x": 1}}], "claims.0.gates.min_x", "unknown gate"),
    ([{**MORE, "against": "rl"}], "claims.0", "with itself"),
    ([{**MORE, "against": "nope"}], "claims.0.against", "names no arm"),
    ([{**MORE, "column": "acc"}], "claims.0.column", "avg, ratio or BENCH"),
    ([{**NI, "margin": None}], "claims.0.margin", "needs a pre-registered margin"),
    ([{**NI, "margin": -0.1}], "claims.0.margin", r"in \[0, 1\)"),
    ([{**MORE, "margin": 0.02}], "claims.0.margin", "only '>='"),
    ([{**MORE, "gates": {"min_start_accuracy": 0.5}}], "claims.0.gates",
     "is endpoints.0: set its gates there"),
])
def test_claim_errors_name_the_field(tmp_path, make_grid, claims, field, message):
    endpoints = [{"arm": "rl", "column": "avg"}]
    with pytest.raises(ConfigError, match=message) as err:
        load_grid(make_grid(tmp_path, claims=claims, endpoints=endpoints))
    assert err.value.field == field


def test_a_claims_benchmark_is_checked_against_the_baseline_eval(tmp_path, make_grid):
    grid = load_grid(make_grid(tmp_path, claims=[{**MORE, "column": "gsm8k:mean"}]))
    with pytest.raises(ConfigError, match="no benchmark 'gsm8k'") as err:
        plan(grid)
    assert err.value.field == "claims.0.column"


def test_the_mini_grid_preregisters_the_papers_claims():
    from parallel_r1.train.grid import mini_grid_path

    grid = load_grid(mini_grid_path())
    kinds = [(c["arm"], c.get("trend") or c["column"], c["direction"]) for c in grid.claims]
    assert kinds == [("r1-s1", "ratio", "falls"), ("r1-s2", "ratio", ">"),
                     ("r1-s2", "position", "rises"), ("r1-s2", "verification", "rises"),
                     ("r1-s2", "avg", ">="), ("scaffold", "avg", ">="),
                     ("r1-mismatch", "ratio", "falls"), ("r1-s1", "ratio", ">")]
    assert grid.gates["min_equation_accuracy"] > 0 and plan(grid).chains


def test_a_trend_claim_on_an_arm_without_rl_is_refused_before_the_run(tmp_path, make_grid):
    grid = load_grid(make_grid(tmp_path, claims=[TREND, {**TREND, "arm": "sft-only"}]))
    with pytest.raises(ConfigError, match="'sft-only' has no rl stage") as err:
        plan(grid)
    assert err.value.field == "claims.1.arm"
