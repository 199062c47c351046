"""The paper's claims as pre-registered checks, on grid outputs written here as the RL and eval
stages write them (metrics.jsonl, rollouts.jsonl, samples.jsonl): each kind of claim held, not
held and uninformative."""

from __future__ import annotations

import json

import pytest

from parallel_r1.eval.grid_report import ArmRuns, write_grid_report
from parallel_r1.eval.seed_stats import SD_ZERO

P, S, SO, PC, SC = "<Parallel>", "<Summary>", "</Summary>", "</Parallel>", "<Path>"
# explore at the start: the paths compute 7, never stated before the block
EXPLORE = f"{P}<Path>3+4=7</Path><Path>2+5=7</Path>{PC}{S}7{SO} so the answer is 7. " + "a" * 40
# verify late: the text has stated 7, the paths re-derive it
VERIFY = "3+4=7 so far. " + "b" * 40 + f" {P}<Path>7-4=3 so 7</Path><Path>4+3=7</Path>{PC}{S}7{SO}"
PLAIN = "3+4=7. 2*3=5. Final Answer: 7"  # one equation of two is right


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rl(folder, responses_per_step, accuracy=0.5, data="synthetic:trap3:100:8"):
    """One RL stage: its metrics and its rollout dump (responses_per_step[t] = step t + 1's)."""
    _jsonl(folder / "metrics.jsonl", [
        {"step": t + 1, "rollout/accuracy": accuracy, "frac_reward_zero_std": 0.2}
        for t in range(len(responses_per_step))])
    _jsonl(folder / "rollouts.jsonl", [
        {"step": t + 1, "index": i, "prompt": f"p{t}-{i // 2}", "response": r, "reward": 0.0}
        for t, rs in enumerate(responses_per_step) for i, r in enumerate(rs)])
    return folder, len(responses_per_step), data


def _eval(folder, correct, ratio):
    """4 problems x 2 samples; correct[p] = [sample 0, sample 1]; `ratio` of them with a block."""
    rows = []
    for p, sample in enumerate(correct):
        for j, c in enumerate(sample):
            block = (2 * p + j) < ratio * 8
            rows.append({"run": "model", "benchmark": "synthetic-trap1", "problem_id": f"q{p}",
                         "problem_index": p, "sample": j, "correct": bool(c), "answer": str(p),
                         "response": (EXPLORE if block else PLAIN) + f" {p}-{j}-{c}",
                         "structure": {"has_valid_block": block}})
    _jsonl(folder / "samples.jsonl", rows)
    return folder


def _arms(tmp_path, seeds=(0, 1, 2)):
    """base: sequential RL with no block, low start accuracy; s1: RL whose parallel ratio falls
    from 1 to 1/4 (seed 2: to 1/2); s2: blocks throughout, exploring at the start of the
    response early and verifying later in the response late (seed 2: one late block explores);
    sft: no RL. s2 answers more than base by a seed-dependent margin and keeps a higher eval
    ratio than s1; s1 and s2 answer alike in every seed."""
    arms = {n: ArmRuns(n, n.upper(), {}, {}) for n in ("base", "s1", "s2", "sft")}
    for s in seeds:
        easy = _rl(tmp_path / f"easy{s}", [[EXPLORE] * 4] * 2, data="synthetic:trap1:100:7")
        arms["base"].rl[s] = [_rl(tmp_path / f"base{s}", [[PLAIN] * 4] * 6, accuracy=0.05)]
        late = 1 + (s == 2)
        arms["s1"].rl[s] = [easy, _rl(tmp_path / f"s1-{s}", [[EXPLORE] * 4] * 2 + [
            [EXPLORE] * late + [PLAIN] * (4 - late)] * 4)]
        pad = " " * (10 * s)  # moves the late blocks by a seed-dependent amount
        last = [pad + VERIFY] * (4 - (s == 2)) + [pad + EXPLORE] * (s == 2)
        arms["s2"].rl[s] = [easy, _rl(tmp_path / f"s2-{s}", [[EXPLORE] * 4] * 2 + [
            [EXPLORE, EXPLORE, VERIFY, VERIFY]] * 2 + [[pad + VERIFY] * 4, last])]
        low = [[1, 1], [0, 0], [0, 0], [0, 0]]
        good = [[1, 1], [1, 1], [1, 1], [int(s == 2), 0]]
        arms["base"].evals[s] = _eval(tmp_path / f"ev-base{s}", low, 0.0)
        arms["sft"].evals[s] = _eval(tmp_path / f"ev-sft{s}", low, 0.5)
        arms["s1"].evals[s] = _eval(tmp_path / f"ev-s1{s}", good, 0.25 + 0.125 * (s == 1))
        arms["s2"].evals[s] = _eval(tmp_path / f"ev-s2{s}", good, 1.0)
    return list(arms.values())


def _claim(text, **keys):
    return {"claim": text, "gates": {}, **keys}


CLAIMS = [
    _claim("S1's ratio falls", arm="s1", trend="ratio", direction="falls"),
    _claim("S1's ratio rises", arm="s1", trend="ratio", direction="rises"),
    _claim("blocks move later under S2", arm="s2", trend="position", direction="rises"),
    _claim("verification rises under S2", arm="s2", trend="verification", direction="rises"),
    _claim("S1 falls, gated", arm="s1", trend="ratio", direction="falls",
           gates={"min_start_accuracy": 0.9}),
    _claim("base blocks move later", arm="base", trend="position", direction="rises"),
    _claim("sft's ratio falls", arm="sft", trend="ratio", direction="falls"),
    _claim("S2 > base", arm="s2", against="base", column="avg", direction=">", margin=None),
    _claim("S2 >= base", arm="s2", against="base", column="avg", direction=">=", margin=0.02),
    _claim("base >= S2", arm="base", against="s2", column="avg", direction=">=", margin=0.02),
    _claim("S1 > S2 on avg", arm="s1", against="s2", column="avg", direction=">", margin=None),
    _claim("S2 keeps a higher ratio than S1", arm="s2", against="s1", column="ratio",
           direction=">", margin=None),
]


def test_each_claim_kind_is_held_not_held_or_uninformative(tmp_path):
    # the S2-vs-S1 ratio claim names this endpoint, whose gate (base's start accuracy is not
    # involved; s1's arms differ) holds, and the gate of the grid fails base's comparisons
    endpoints = [{"arm": "s2", "against": "s1", "column": "ratio", "gates": {}}]
    out = write_grid_report(tmp_path / "report", _arms(tmp_path), "base", seeds=[0, 1, 2],
                            endpoints=endpoints, claims=CLAIMS)
    got = {c["claim"]: c for c in out["claims"]}
    assert [c["claim"] for c in out["claims"]] == [c["claim"] for c in CLAIMS]
    falls = got["S1's ratio falls"]  # per seed -3/4, -3/4, -1/2: t on 2 df
    assert falls["outcome"] == "held" and falls["value"] == pytest.approx(-2 / 3)
    assert falls["high"] < 0 and "excludes 0" in falls["why"]
    assert got["S1's ratio rises"]["outcome"] == "not held"
    later = got["blocks move later under S2"]
    assert later["outcome"] == "held" and later["low"] > 0
    assert got["verification rises under S2"]["outcome"] == "held"  # per seed 1, 1, 7/8
    assert got["verification rises under S2"]["value"] == pytest.approx(23 / 24)
    gated = got["S1 falls, gated"]
    assert gated["outcome"] == "uninformative" and gated["value"] is None
    assert gated["why"] == "gate failed: start_accuracy of s1 0.5 < 0.9"
    assert got["base blocks move later"]["why"] == "seed 0: no blocks in the early third"
    assert got["sft's ratio falls"]["why"] == "the arm has no RL stage"
    # comparisons: per seed Avg Mean@4 +1/2, +1/2, +5/8
    assert got["S2 > base"]["outcome"] == "held" and "p Holm" in got["S2 > base"]["why"]
    assert got["S2 >= base"]["outcome"] == "held" and "-margin -2.0" in got["S2 >= base"]["why"]
    assert got["base >= S2"]["outcome"] == "not held"
    # s1 and s2 answer alike in every seed: +0, +0, +0 is shown, but SD 0 is no test
    equal = got["S1 > S2 on avg"]
    assert equal["outcome"] == "uninformative" and equal["why"] == SD_ZERO
    assert equal["value"] == equal["low"] == equal["high"] == 0.0 and equal["p"] is None
    ratio = got["S2 keeps a higher ratio than S1"]  # +3/4, +5/8, +3/4
    assert ratio["outcome"] == "held" and ratio["value"] == pytest.approx(17 / 24)
    # the claims' own comparisons joined the primary endpoints: 3 of them and the endpoint;
    # the SD-0 one is not tested, so Holm corrects over 3
    family = [c for c in out["verdicts"]["comparisons"] if c["primary"]]
    assert len(family) == 4 and out["verdicts"]["family_size"] == 3
    by_key = {(c["arm"], c["against"], c["column"]): c for c in family}
    assert by_key[("s1", "s2", "avg")]["p_holm"] is None
    assert by_key[("s1", "s2", "avg")]["verdict"] == f"uninformative ({SD_ZERO})"
    table = out["table"]
    assert "The paper's claims, pre-registered in the grid file." in table
    assert "| S1's ratio falls | S1: ratio falls (late - early third" in table
    assert "**uninformative** | gate failed: start_accuracy of s1 0.5 < 0.9 |" in table
    assert "at Holm's most stringent level alpha/m = 0.05/3 = 0.01667" in table
    assert "| S1 - S2 | Avg Mean@k | +0.0 [+0.0, +0.0] U | – | – | n/a (SD 0) |" in table
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [c["outcome"] for c in saved["claims"]][:3] == ["held", "not held", "held"]
    assert "| S2 > base |" in out["report"].read_text()


def test_a_failed_gate_or_one_seed_makes_a_comparison_claim_uninformative(tmp_path):
    claims = [_claim("S2 > base", arm="s2", against="base", column="avg", direction=">",
                     margin=None)]
    out = write_grid_report(tmp_path / "r1", _arms(tmp_path), "base", seeds=[0, 1, 2],
                            claims=claims, gates={"min_start_accuracy": 0.1})
    assert out["claims"][0]["outcome"] == "uninformative"
    assert out["claims"][0]["why"] == "gate failed: start_accuracy of base 0.05 < 0.1"
    assert out["verdicts"]["family_size"] == 0
    assert "no endpoint tested, so no corrected level" in out["table"]
    one = write_grid_report(tmp_path / "r2", _arms(tmp_path / "one", seeds=(0,)), "base",
                            seeds=[0], claims=claims + [CLAIMS[0]])
    assert [(c["outcome"], c["why"]) for c in one["claims"]] == [
        ("uninformative", "1 seed: no interval")] * 2


def test_design_prints_equation_accuracy_and_block_use_per_arm_and_seed(tmp_path):
    out = write_grid_report(tmp_path / "report", _arms(tmp_path), "base", seeds=[0, 1, 2],
                            gates={"min_equation_accuracy": 0.6})
    skill = out["design"]["skill"]
    assert skill["base"][0]["equation_accuracy"] == 0.5 and skill["base"][0]["num_blocks"] == 0
    s2 = skill["s2"][1]  # 8 samples with a block: its paths agree, the summary uses them
    assert s2["num_blocks"] == 8 and s2["paths_differ"] == 0.0
    assert s2["summary_uses_path"] == 1.0 and s2["verification_changes"] is None
    assert "| S2 | 1 | 100.0 | 16 | 8 | 0.0 | 100.0 | – (of 0) |" in out["table"]
    for c in out["verdicts"]["comparisons"]:  # the base cannot do the arithmetic
        assert c["failed"] == ["equation_accuracy of base 0.5 < 0.6"]


def test_a_trend_on_a_handful_of_blocks_is_uninformative_not_held():
    # one block early (not a check), one late (a check), in every seed: the per-seed shares
    # agree exactly (sd 0), which a t-interval alone would call held
    from parallel_r1.eval.grid_claims import MIN_THIRD_COUNT, trend_outcome

    def tallied(blocks, spread=1):  # seed s: blocks - spread * s of the late blocks check
        seeds = (0, 1, 2)
        steps = {s: {1: {"verification": (0, blocks)}, 2: {"verification": (0, 0)},
                     3: {"verification": (max(blocks - spread * s, 0), blocks)}} for s in seeds}
        return {"per_seed": steps, "phases": {s: [1, 3] for s in seeds}}

    claim = {"claim": "verification rises", "arm": "s2", "trend": "verification",
             "direction": "rises"}
    few = trend_outcome(claim, tallied(1), [])
    assert few["outcome"] == "uninformative"
    assert few["why"] == f"seed 0: 1 block in the early third (< {MIN_THIRD_COUNT})"
    assert trend_outcome(claim, tallied(MIN_THIRD_COUNT), [])["outcome"] == "held"
    # enough blocks, but every seed goes 0 -> 1 exactly: a point, not a test
    same = trend_outcome(claim, tallied(MIN_THIRD_COUNT, spread=0), [])
    assert (same["outcome"], same["why"], same["value"], same["p"]) == (
        "uninformative", SD_ZERO, 1.0, None)


def test_a_clip_gate_on_runs_that_never_logged_clipping_makes_the_claim_uninformative(tmp_path):
    # the RL stages here write no clip_ratio/region_mean: min_clip_fraction cannot pass on it
    claims = [_claim("S1's ratio falls", arm="s1", trend="ratio", direction="falls",
                     gates={"min_clip_fraction": 0.0}),
              _claim("sft's ratio falls", arm="sft", trend="ratio", direction="falls",
                     gates={"min_clip_fraction": 0.0})]
    out = write_grid_report(tmp_path / "report", _arms(tmp_path), "base", seeds=[0, 1, 2],
                            claims=claims)
    assert [(c["outcome"], c["why"]) for c in out["claims"]] == [
        ("uninformative", "gate failed: clip_fraction of s1 not measured (not logged)"),
        ("uninformative", "the arm has no RL stage")]  # no RL: the gate does not apply
