"""Two CPU processes on gloo (torchrun) train step for step like one process on the same global
batch, and a group split across processes samples as it would in one process.

Every claim is read from inside the runs: each process prints its rank and the world size
(`train.distributed.announce`), the rollout dumps hold every completion with its place in the
global batch, and the saved weights are compared.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

RECIPE = """
name: ddp-test
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: rl, data: "synthetic:1:8:3", template: none, learning_rate: 1.0e-3,
      reward: "dp_rewards:brevity", per_device_batch_size: {bs}, num_generations: 4,
      max_steps: {steps}, save_steps: {save}, max_tokens: 24, max_path_tokens: 8, loss_type: dapo,
      dump_every: 1}}
"""
REWARD = '''
def brevity(response, gold, *, grader=None, step=1):
    """Shorter is better: a reward that differs within every group of a random tiny model."""
    return -len(response) / 100.0, {"acc": 0.0}
'''
ROOT = Path(__file__).resolve().parents[2]
ANNOUNCE = re.compile(r"GRPO: process (\d+) of (\d+) \((\w+), (\w+), backend (\w+)\)")


def _command(tmp_path: Path, procs: int, per_device: int, name: str, fsdp: bool = False,
             steps: int = 3, save: int = 100) -> tuple[list[str], dict]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(RECIPE.format(out=tmp_path / name, bs=per_device, steps=steps, save=save))
    (tmp_path / "dp_rewards.py").write_text(REWARD)
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONWARNINGS": "ignore",
           "OMP_NUM_THREADS": "1", "PARALLEL_R1_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = [sys.executable, "-m", "parallel_r1", "run", str(recipe)]
    if fsdp:  # accelerate's launcher sets the FSDP environment from the shipped config
        run = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes/accelerate/cpu-fsdp-2.yaml"), "-m", *run[2:]]
    elif procs > 1:
        run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
               "--standalone", *run[1:]]
    return run, env


def _run(tmp_path: Path, procs: int, per_device: int, name: str, fsdp: bool = False,
         **recipe: int) -> dict:
    run, env = _command(tmp_path, procs, per_device, name, fsdp, **recipe)
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stage = tmp_path / name / "0-rl"
    rows = [json.loads(line) for line in (stage / "metrics.jsonl").open()]
    dumps = {}
    for path in stage.glob("rollouts*.jsonl"):
        for line in path.open():
            r = json.loads(line)
            assert (r["step"], r["index"]) not in dumps, "a completion dumped twice"
            dumps[(r["step"], r["index"])] = (r["prompt"], r["response"])
    state = json.loads((tmp_path / name / "state.json").read_text())["stages"]["rl"]
    return {"steps": [r for r in rows if "grad_norm" in r], "resumed_from": state["resumed_from"],
            "processes": sorted(tuple(m.groups()) for m in ANNOUNCE.finditer(proc.stderr)),
            "dumps": dumps, "weights": load_file(stage / "model" / "model.safetensors")}


def _same_training(one: dict, many: dict) -> None:
    steps = [r["step"] for r in one["steps"]]
    assert steps == [r["step"] for r in many["steps"]] == list(range(1, len(steps) + 1))
    assert one["dumps"] == many["dumps"]  # the same prompts, completions and places
    for a, b in zip(one["steps"], many["steps"]):
        assert a["rollout/reward"] == pytest.approx(b["rollout/reward"], abs=1e-6)
        assert a["frac_reward_zero_std"] == b["frac_reward_zero_std"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4, abs=1e-6)
    assert any(r["grad_norm"] > 0 for r in one["steps"][1:])  # training moved past step 1
    for key, w in one["weights"].items():
        assert (w - many["weights"][key]).abs().max().item() < 1e-5, key


def test_two_gloo_processes_match_one(tmp_path):
    one = _run(tmp_path, 1, 8, "one")
    two = _run(tmp_path, 2, 4, "two")
    assert one["processes"] == []  # one process says nothing
    assert two["processes"] == [("0", "2", "ddp", "MULTI_CPU", "gloo"),
                                ("1", "2", "ddp", "MULTI_CPU", "gloo")]
    assert len(two["dumps"]) == 3 * 8 and max(i for _, i in two["dumps"]) == 7
    _same_training(one, two)


def test_two_gloo_processes_under_fsdp_match_one(tmp_path):
    """FSDP2 full sharding over two CPU processes: the shipped accelerate config really starts
    two processes, they really shard (FSDP, read from each process), and train as one does."""
    one = _run(tmp_path, 1, 8, "one")
    fsdp = _run(tmp_path, 2, 4, "fsdp", fsdp=True)
    assert fsdp["processes"] == [("0", "2", "fsdp", "FSDP", "gloo"),
                                 ("1", "2", "fsdp", "FSDP", "gloo")]
    assert set(fsdp["weights"]) == set(one["weights"])  # the full weights, tied ones once
    _same_training(one, fsdp)


def test_two_processes_killed_and_resumed_match_one(tmp_path):
    """kill -9 of a two-process run after a checkpoint, then the same launch again: it resumes
    there (read from the run's state) on two processes, and ends as one process does."""
    one = _run(tmp_path, 1, 8, "one", steps=5, save=1)
    run, env = _command(tmp_path, 2, 4, "two", steps=5, save=1)
    proc = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    stage = tmp_path / "two" / "0-rl"
    deadline = time.monotonic() + 300
    while not (stage / "checkpoint-3" / "trainer_state.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint-3"
        time.sleep(0.05)
    _kill_tree(proc.pid)  # torchrun and its workers (which run in sessions of their own)
    proc.wait()
    assert not (stage / "model").exists()  # killed before the end
    resumed = _run(tmp_path, 2, 4, "two", steps=5, save=1)
    assert re.search(r"checkpoint-[34]$", resumed["resumed_from"])
    assert [p[:2] for p in resumed["processes"]] == [("0", "2"), ("1", "2")]
    _same_training(one, resumed)


def _kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it, found first so none is missed."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_group_split_across_processes_is_one_group(tmp_path):
    """per_device_batch_size 2 with num_generations 4 on two processes: every group of 4 spans
    both processes, and draws the 4 distinct samples one process draws (issue 19, case 2)."""
    one = _run(tmp_path, 1, 4, "one")
    two = _run(tmp_path, 2, 2, "split")
    assert [p[:2] for p in two["processes"]] == [("0", "2"), ("1", "2")]
    _same_training(one, two)
    for step in (1, 2, 3):
        group = [two["dumps"][(step, i)] for i in range(4)]
        assert len({prompt for prompt, _ in group}) == 1
        assert len({response for _, response in group}) > 1  # not 4 copies of one sample
    assert all(r["frac_reward_zero_std"] < 1 for r in two["steps"])


SPLIT = """name: split
output_dir: {out}
model: {{name: tiny}}
stages:
  - kind: rl
    data: "synthetic:1:8:3"
    per_device_batch_size: {bs}
    num_generations: 4
    dynamic_sampling: {ds}
    max_steps: 1
"""


def _check(tmp_path, monkeypatch, world: int, bs: int, ds: bool):
    from parallel_r1.train.preflight import check_recipe
    from parallel_r1.train.recipe import load

    path = tmp_path / "split.yaml"
    path.write_text(SPLIT.format(out=tmp_path / "out", bs=bs, ds=str(ds).lower()))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    return check_recipe(load(str(path)))


def test_check_refuses_a_global_batch_of_partial_groups(tmp_path, monkeypatch):
    from parallel_r1.errors import ConfigError

    where = r"split\.yaml:7, field .stages\.rl\.per_device_batch_size"
    with pytest.raises(ConfigError, match=where):
        _check(tmp_path, monkeypatch, world=2, bs=1, ds=False)  # 2 completions, groups of 4
    assert _check(tmp_path, monkeypatch, world=2, bs=2, ds=False)  # one group over 2 processes
    assert _check(tmp_path, monkeypatch, world=4, bs=1, ds=False)


def test_check_refuses_dynamic_sampling_over_split_groups(tmp_path, monkeypatch):
    from parallel_r1.errors import ConfigError

    with pytest.raises(ConfigError, match=r"split\.yaml:9, field .stages\.rl\.dynamic_sampling"):
        _check(tmp_path, monkeypatch, world=2, bs=2, ds=True)
    assert _check(tmp_path, monkeypatch, world=2, bs=4, ds=True)  # whole groups per process
