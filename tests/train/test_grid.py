"""The grid runner: planning with shared prefixes, resumable runs, the report (tiny sizes)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from parallel_r1.errors import ConfigError
from parallel_r1.train.grid import is_done, load_grid, node_dir, plan, stage_dir


def test_plan_shares_equal_prefixes_and_only_those(tmp_path, make_grid):
    write_grid = make_grid
    grid = load_grid(write_grid(tmp_path))
    p = plan(grid)
    assert len(p.chains) == 4 and sum(map(len, p.chains.values())) == 10
    assert len(p.nodes) == 8  # one SFT per seed serves both arms
    for seed in (0, 1):
        assert p.chains[("sft-only", seed)][0] == p.chains[("rl", seed)][0]
        assert p.chains[("sft-only", seed)][1] != p.chains[("rl", seed)][2]  # other parents
    assert p.chains[("rl", 0)][0] != p.chains[("rl", 1)][0]
    other = plan(load_grid(write_grid(tmp_path, overrides=["stages.sft.max_steps=3"])))
    assert not set(other.nodes) & set(p.nodes)  # an upstream change reaches every node below


def test_grid_checks_name_the_field(tmp_path, make_grid):
    write_grid = make_grid
    with pytest.raises(ConfigError, match="baseline"):
        load_grid(write_grid(tmp_path, baseline="nope"))
    with pytest.raises(ConfigError, match="unknown key 'sedes'"):
        load_grid(write_grid(tmp_path, sedes=[0]))
    for key, value in (("jobs", "two"), ("threads", "x"), ("jobs", 1.5)):
        with pytest.raises(ConfigError, match="must be an integer >= 1") as err:
            load_grid(write_grid(tmp_path), [f"{key}={value}"])
        assert err.value.field == key
    bad = load_grid(write_grid(tmp_path), ["seeds=[0, 1]"])
    bad.arms[1].overrides = ["stages.rll.max_steps=1"]
    with pytest.raises(ConfigError, match="names no stage"):
        plan(bad)
    bad.arms[1].overrides, bad.arms[1].stages = [], ["sft"]
    with pytest.raises(ConfigError, match="needs an eval stage"):
        plan(bad)


def test_grid_runs_resumes_without_redoing_and_matches_the_recipe_run(tmp_path, make_grid):
    from parallel_r1.train.grid_runner import report_grid, run_grid
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    grid = load_grid(make_grid(tmp_path))
    p = plan(grid)
    run_grid(grid, p, progress=False, inline=True)
    assert all(is_done(grid, n) for n in p.nodes.values())
    first = report_grid(grid, p)
    table = (tmp_path / "grid" / "report" / "table.md").read_text()
    assert "SFT then RL" in table and "Trap-L1 Mean@2 / Pass@2" in table
    assert (tmp_path / "grid" / "report" / "arms.png").is_file()
    report = (tmp_path / "grid" / "report" / "report.md").read_text()
    assert re.search(r"The source hash \(sha256 of the parallel_r1 \.py files, not a git "
                     r"commit\) of every node: [0-9a-f]{12}; git commit of the sessions: "
                     r"[0-9a-f]{7,}", report)
    assert json.loads((tmp_path / "grid" / "plan.json").read_text())["arms"]["rl"]["1"]

    # A rerun redoes nothing and writes the same table.
    state = run_grid(grid, p, progress=False, inline=True)
    assert state["sessions"][-1]["nodes_run"] == 0
    assert report_grid(grid, p)["table"] == first["table"]

    # An RL node killed after its first step (its state, last checkpoint and model gone) and the
    # eval below it run again, the RL node from its checkpoint; nothing else runs.
    rl_key, eval_key = p.chains[("rl", 0)][1:]
    rl_dir = node_dir(grid, p.nodes[rl_key])
    (rl_dir / "state.json").unlink()
    for gone in ("0-rl/checkpoint-2", "0-rl/model"):
        shutil.rmtree(rl_dir / gone)
    shutil.rmtree(node_dir(grid, p.nodes[eval_key]))
    state = run_grid(grid, p, progress=False, inline=True)
    assert state["sessions"][-1]["nodes_run"] == 2
    record = json.loads((rl_dir / "state.json").read_text())["stages"]["rl"]
    assert record["resumed_from"].endswith("checkpoint-1")
    assert report_grid(grid, p)["table"] == first["table"]  # the resumed run gives the same

    # The arm through shared nodes gives exactly what the recipe gives when run alone.
    alone = load(tmp_path / "tiny.yaml", [f"output_dir={tmp_path / 'alone'}", "seed=1"])
    run(alone)
    ours = (stage_dir(grid, p.nodes[p.chains[("rl", 1)][-1]]) / "samples.jsonl").read_text()
    theirs = (tmp_path / "alone" / "2-eval" / "samples.jsonl").read_text()
    assert [json.loads(r)["response"] for r in ours.splitlines()] == \
        [json.loads(r)["response"] for r in theirs.splitlines()]


def test_second_grid_process_on_one_folder_is_refused(tmp_path):
    from parallel_r1.train.grid_runner import GridLocked, _Lock

    folder = tmp_path / "g"
    held = _Lock(folder)
    try:
        with pytest.raises(GridLocked, match="another parallel-r1 process"):
            _Lock(folder)
    finally:
        held.release()
    _Lock(folder).release()  # free again


def test_a_grid_and_a_run_never_write_one_folder_together(tmp_path):
    """The grid holds the writer lock `run` and `eval` take, both ways round."""
    from parallel_r1.files import WriterLockedError, command_line, one_writer
    from parallel_r1.train.grid_runner import GridLocked, _Lock

    folder = tmp_path / "shared"
    held = _Lock(folder)
    try:
        with pytest.raises(WriterLockedError), one_writer(folder, command_line()):
            pass
    finally:
        held.release()
    with one_writer(folder, command_line()):
        with pytest.raises(GridLocked):
            _Lock(folder)


def test_packaged_mini_grid_shares_the_curriculum_and_gives_every_rl_arm_equal_budgets():
    from parallel_r1.train.grid import QUICK, mini_grid_path

    grid = load_grid(mini_grid_path())
    p = plan(grid)
    assert len(grid.seeds) >= 3 and len(grid.arms) == 9
    assert len(p.nodes) == 25 * len(grid.seeds)
    for seed in grid.seeds:
        chain = {a.name: [p.nodes[k] for k in p.chains[(a.name, seed)]] for a in grid.arms}
        assert len({c[0].key for c in chain.values()}) == 1  # one base model for every arm
        assert chain["grpo"][1] is chain["grpo-easy"][1]  # one plain cold start
        stage1 = {name: c[2].key for name, c in chain.items() if name in ("r1-s1", "r1-s2",
                                                                          "scaffold")}
        assert len(set(stage1.values())) == 1  # one stage-1 RL for S1, S2 and the scaffold
        # the mismatch arm: S1's cold start, then RL sampled threads and trained structured
        assert chain["r1-mismatch"][1] is chain["r1-s1"][1]
        assert {(n.stage.mode, n.stage.train_layout) for n in chain["r1-mismatch"][2:4]} == \
            {("threads", "structured")}
        assert all(n.model["tiny_digits"] for c in chain.values() for n in c)
        rl_arms = {name: c for name, c in chain.items() if any(n.stage.kind == "rl" for n in c)}
        budgets = {name: (sum(n.stage.max_steps for n in c if n.stage.kind == "rl"),
                          {(n.stage.per_device_batch_size, n.stage.num_generations,
                            n.stage.num_iterations, n.stage.max_tokens, n.stage.max_path_tokens)
                           for n in c if n.stage.kind == "rl"},
                          {n.stage.max_steps for n in c if n.stage.kind == "sft"})
                   for name, c in rl_arms.items()}
        assert len(rl_arms) == 7 and len({repr(b) for b in budgets.values()}) == 1, budgets
        assert all(n.stage.num_iterations == 2 for c in rl_arms.values() for n in c
                   if n.stage.kind == "rl")  # more than one update per generation: clipping
        evals = {repr(dict(c[-1].stage.eval, mode=None)) for c in chain.values()}
        assert len(evals) == 1  # every arm is evaluated alike (mode aside)
    quick = load_grid(mini_grid_path(), QUICK)
    assert len(plan(quick).nodes) == 25 * 2
    old = load_grid(mini_grid_path("mini-grid"))  # the trap task's grid still loads as it was
    assert len(plan(old).nodes) == 21 * len(old.seeds)


def test_mini_grid_cap_binds_on_some_hard_parallel_traces_of_the_teacher():
    from parallel_r1.data.synthetic import from_spec
    from parallel_r1.models.tiny import build_tokenizer
    from parallel_r1.train.grid import mini_grid_path

    grid = load_grid(mini_grid_path())
    p = plan(grid)
    hard = next(p.nodes[k].stage for k in p.chains[("r1-s1", grid.seeds[0])]
                if p.nodes[k].stage.name == "rl-hard")
    tokenizer = build_tokenizer(digits=True)
    records = from_spec(hard.data.rsplit(":", 2)[0] + ":400:0")
    lengths = [len(tokenizer.encode(r.extras["trajectory"])) for r in records]
    over = sum(n > hard.max_tokens for n in lengths) / len(lengths)
    plain = [len(tokenizer.encode(r.extras["trajectory_plain"])) for r in records]
    assert 0.05 <= over <= 0.2  # an unneeded block can cost: the cap sits near the 90th pct
    assert sum(n > hard.max_tokens for n in plain) / len(plain) < over


def test_paper_scale_grid_loads_and_shares_the_cold_start():
    from pathlib import Path

    grid = load_grid(Path(__file__).resolve().parents[2] / "recipes" / "qwen3-4b" / "grid.yaml")
    p = plan(grid)
    assert grid.launcher.startswith("accelerate launch") and len(grid.seeds) == 3
    for seed in grid.seeds:
        firsts = {a.name: p.chains[(a.name, seed)][0] for a in grid.arms}
        assert len({firsts[a] for a in ("sft-unseen", "r1-s1", "r1-s2", "scaffold")}) == 1
        assert firsts["sft-seen"] == firsts["r1-seen"] != firsts["sft-unseen"]
        assert p.nodes[p.chains[("r1-seen", seed)][1]].stage.mode == "causal"
    assert len(p.nodes) == 15 * len(grid.seeds)  # the scaffold: S2, then accuracy (2 stages)


def test_the_code_version_is_a_source_hash_and_the_git_commit_is_gits():
    import subprocess

    from parallel_r1.train.grid_runner import code_version, git_commit

    assert re.fullmatch(r"[0-9a-f]{12}", code_version())
    import parallel_r1

    src = Path(parallel_r1.__file__).parent
    head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert git_commit().split(" ")[0] == head and head


def test_preregistered_endpoints_and_gates_are_checked_up_front(tmp_path, make_grid):
    ok = load_grid(make_grid(tmp_path, endpoints=[{"arm": "rl", "column": "avg"}],
                             gates={"min_start_accuracy": 0.1}))
    assert ok.endpoints == [{"arm": "rl", "column": "avg", "against": "sft-only", "gates": {}}]
    bad = [
        ({"endpoints": [{"arm": "nope", "column": "avg"}]}, "endpoints.0.arm", "names no arm"),
        ({"endpoints": [{"arm": "rl", "column": "acc"}]}, "endpoints.0.column",
         "avg, ratio or BENCH:mean|pass|ratio"),
        ({"endpoints": [{"arm": "rl", "column": "avg", "why": 1}]}, "endpoints.0",
         "an endpoint is"),
        ({"endpoints": [{"arm": "rl", "column": "avg", "gates": {"min_x": 0.1}}]},
         "endpoints.0.gates.min_x", "unknown gate"),
        ({"endpoints": [{"arm": "rl", "column": "avg"}] * 2}, "endpoints.1", "named twice"),
        ({"gates": {"max_zero_adv_share": 1.5}}, "gates.max_zero_adv_share", r"\[0, 1\]"),
        ({"gates": {"min_arm_diff": 0.1}}, "gates.min_arm_diff", "known: "),
        ({"alpha": 0}, "alpha", r"\(0, 1\)"),
    ]
    for keys, field, message in bad:
        with pytest.raises(ConfigError, match=message) as err:
            load_grid(make_grid(tmp_path, **keys))
        assert err.value.field == field, keys
    grid = load_grid(make_grid(tmp_path, endpoints=[{"arm": "rl", "column": "gsm8k:mean"}]))
    with pytest.raises(ConfigError, match="no benchmark 'gsm8k' in the baseline's eval") as err:
        plan(grid)  # the benchmarks are known once the recipes are loaded
    assert err.value.field == "endpoints.0.column"
    assert plan(load_grid(make_grid(tmp_path, endpoints=[
        {"arm": "rl", "column": "synthetic-trap1:pass"}]))).chains


def test_packaged_grids_preregister_endpoints_and_gates():
    from parallel_r1.eval.grid_design import GATES
    from parallel_r1.train.grid import mini_grid_path

    gpu = Path(__file__).resolve().parents[2] / "recipes" / "qwen3-0.6b" / "grid.yaml"
    for path in (mini_grid_path(), gpu):
        grid = load_grid(path)
        assert grid.endpoints and set(grid.gates) <= set(GATES)
        assert {"min_start_accuracy", "max_zero_adv_share", "min_arm_difference",
                "min_over_chance"} <= set(grid.gates)
        assert len(plan(grid).chains) == len(grid.arms) * len(grid.seeds)


@pytest.mark.slow  # 1-2.5 minutes on 2 cores: outside the default suite
def test_quick_mini_grid_prints_design_checks_and_marks_uninformative(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "parallel_r1", "grid", "--mini", "--quick",
                           "--out", str(tmp_path / "g")], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.index("Design checks (before any verdict)") < out.index("Paired deltas")
    # at the quick sizes RL sees no correct rollout: every RL comparison is uninformative,
    # and S2 sampled exactly S1's rollouts
    row = next(line for line in out.splitlines() if line.startswith(
        "| Parallel-R1-Unseen (S2) - Parallel-R1-Unseen (S1) | Parallel ratio"))
    assert "uninformative" in row and "rollouts_differ of r1-s2 vs r1-s1 (RL rollouts) 0" in row
    results = json.loads((tmp_path / "g" / "report" / "results.json").read_text())
    assert results["verdicts"]["family_size"] == 0
