"""The grid runner: planning with shared prefixes, resumable runs, the report (tiny sizes)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from parallel_r1.errors import ConfigError
from parallel_r1.train.grid import is_done, load_grid, node_dir, plan, stage_dir

EVAL = {"benchmarks": "synthetic-trap1", "samples": 2, "limit": 3, "max_tokens": 24,
        "max_path_tokens": 8, "graders": ["paper"]}
RECIPE = {
    "name": "tiny", "output_dir": "unused", "seed": 0,
    "model": {"name": "tiny", "tiny_layers": 1, "tiny_hidden": 32},
    "stages": [
        {"kind": "sft", "name": "sft", "data": "synthetic:trap1:8:0", "template": "none",
         "learning_rate": 1e-3, "per_device_batch_size": 4, "max_steps": 2, "save_steps": 1},
        {"kind": "rl", "name": "rl", "data": "synthetic:trap1:8:7", "template": "none",
         "learning_rate": 1e-4, "per_device_batch_size": 4, "num_generations": 2,
         "max_steps": 2, "save_steps": 1, "max_tokens": 24, "max_path_tokens": 8,
         "dump_every": 1, "check_logprobs": False, "grader": "paper"},
        {"kind": "eval", "name": "eval", "template": "none", "eval": EVAL},
    ]}


def write_grid(tmp_path, **extra):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(RECIPE))
    grid = {"name": "t", "output_dir": str(tmp_path / "grid"), "seeds": [0, 1],
            "baseline": "sft-only", "arms": [
                {"name": "sft-only", "recipe": "tiny.yaml", "stages": ["sft", "eval"]},
                {"name": "rl", "recipe": "tiny.yaml", "title": "SFT then RL"}], **extra}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_plan_shares_equal_prefixes_and_only_those(tmp_path):
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


def test_grid_checks_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="baseline"):
        load_grid(write_grid(tmp_path, baseline="nope"))
    with pytest.raises(ConfigError, match="unknown key 'sedes'"):
        load_grid(write_grid(tmp_path, sedes=[0]))
    bad = load_grid(write_grid(tmp_path), ["seeds=[0, 1]"])
    bad.arms[1].overrides = ["stages.rll.max_steps=1"]
    with pytest.raises(ConfigError, match="names no stage"):
        plan(bad)
    bad.arms[1].overrides, bad.arms[1].stages = [], ["sft"]
    with pytest.raises(ConfigError, match="needs an eval stage"):
        plan(bad)


def test_grid_runs_resumes_without_redoing_and_matches_the_recipe_run(tmp_path):
    from parallel_r1.train.grid_runner import report_grid, run_grid
    from parallel_r1.train.recipe import load
    from parallel_r1.train.runner import run

    grid = load_grid(write_grid(tmp_path))
    p = plan(grid)
    run_grid(grid, p, progress=False, inline=True)
    assert all(is_done(grid, n) for n in p.nodes.values())
    first = report_grid(grid, p)
    table = (tmp_path / "grid" / "report" / "table.md").read_text()
    assert "SFT then RL" in table and "Trap-L1 Mean@2 / Pass@2" in table
    assert (tmp_path / "grid" / "report" / "arms.png").is_file()
    assert json.loads((tmp_path / "grid" / "plan.json").read_text())["arms"]["rl"]["1"]

    # A rerun redoes nothing and writes the same table.
    state = run_grid(grid, p, progress=False, inline=True)
    assert state["sessions"][-1]["nodes_run"] == 0
    assert report_grid(grid, p)["table"] == first["table"]

    # An interrupted node (its state lost) and the node below it run again; nothing else does.
    rl_key, eval_key = p.chains[("rl", 0)][1:]
    (node_dir(grid, p.nodes[rl_key]) / "state.json").unlink()
    shutil.rmtree(node_dir(grid, p.nodes[eval_key]))
    state = run_grid(grid, p, progress=False, inline=True)
    assert state["sessions"][-1]["nodes_run"] == 2
    runs = {n.label: json.loads((node_dir(grid, n) / "state.json").read_text())
            ["stages"][n.stage.name]["runs"] for n in p.nodes.values()}
    assert sorted(runs.values()) == [1] * 7 + [2]
    assert report_grid(grid, p)["table"] == first["table"]  # resumed from its checkpoint

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
        with pytest.raises(GridLocked, match="another grid process"):
            _Lock(folder)
    finally:
        held.release()
    _Lock(folder).release()  # free again
