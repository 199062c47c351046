"""`run --check` tells where each data set comes from and refuses one found nowhere, naming the
recipe field; `--data-dir` exists on every command whose error can name it, and `run` honours it
(issue 22, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_r1.data import sources
from parallel_r1.data.sources import DATA_ENV, PACKAGED_DIR

ROOT = Path(__file__).resolve().parents[2]
V2 = "parallel_gsm8k_v2_sft.jsonl"
RECIPE = """name: data-sources
output_dir: {out}
model: {{name: tiny}}
stages:
  - kind: sft
    data: parallel-gsm8k-v2
    template: none
    max_steps: 2
  - {{kind: rl, data: gsm8k, max_steps: 1, num_generations: 2, per_device_batch_size: 2}}
"""
TRACE = ("Add the two.\n<Parallel><Path>1+1=2</Path><Path>2-1=1, so 1+1=2</Path></Parallel>\n"
         "<Summary>Both give 2.</Summary>\nFinal Answer: 2")


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """As in a fresh clone: no offline data folder ($PARALLEL_R1_DATA: an empty one), no hub
    mirror. Setting the variable here also restores it after a command sets it (--data-dir)."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(DATA_ENV, str(empty))
    monkeypatch.delenv(sources.HUB_MIRROR_ENV, raising=False)
    return empty


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "run"))
    return path


@pytest.fixture
def data_dir(tmp_path):
    """A data dir holding a 2-row parallel_gsm8k_v2_sft.jsonl of short real traces."""
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"id": f"t{i}", "question": "What is 1+1?", "answer": "2", "trajectory": TRACE}
            for i in range(2)]
    (folder / V2).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_check_says_where_each_data_set_comes_from(cli, clone, recipe, data_dir):
    code, out, err = cli("run", recipe, "--check")
    assert code == 0, err
    assert f"sft: sft on parallel-gsm8k-v2 (341 records from the packaged copy: " \
           f"{PACKAGED_DIR / V2}.gz)" in out
    assert "rl: rl on gsm8k (hub download of openai/gsm8k when the stage starts, needs the " \
           "network)" in out
    code, out, err = cli("run", recipe, "--check", "--data-dir", data_dir)
    assert code == 0, err
    assert f"sft: sft on parallel-gsm8k-v2 (2 records from the data dir: {data_dir / V2})" in out


def test_check_refuses_a_data_set_found_nowhere_naming_the_recipe_line(
        cli, clone, recipe, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "PACKAGED_DIR", tmp_path / "not-packaged")
    for command in (["run", recipe, "--check"], ["run", recipe]):
        line = cli.refused(*command)
        assert line == (
            "error: data set 'parallel-gsm8k-v2' (split train) is not available: no hub copy; "
            f"give --data-dir DIR or set PARALLEL_R1_DATA=DIR to a folder holding {V2} (none "
            f"in {clone}) (recipe field stages.sft.data, {recipe}:6)")
    run = tmp_path / "run"  # refused before any work: at most the writer lock's own files
    assert not run.exists() or sorted(p.name for p in run.iterdir()) == [
        ".parallel-r1-output", ".parallel-r1.lock"]


def test_the_papers_sft_recipes_start_from_a_clone(cli, clone):
    for name in ("sft-seen", "sft-unseen"):
        recipe = ROOT / "recipes" / "qwen3-4b" / f"{name}.yaml"
        code, out, err = cli("run", recipe, "--check", "model.dtype=float32")  # CPU: no bf16
        assert code == 0, err
        assert "sft: sft on parallel-gsm8k-v2 (341 records from the packaged copy" in out


def test_run_reads_the_data_dir_it_is_given(cli, clone, recipe, data_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "PACKAGED_DIR", tmp_path / "not-packaged")  # only --data-dir
    code, out, err = cli("run", recipe, "stages=[{kind: sft, data: parallel-gsm8k-v2, "
                         "template: none, max_steps: 1, per_device_batch_size: 1}]",
                         "--data-dir", data_dir)
    assert code == 0, err
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stages"]["sft"]["status"] == "done"


@pytest.mark.parametrize("command", [["run", "RECIPE"], ["eval", "tiny"], ["grid", "--mini"],
                                     ["data", "prepare", "gsm8k", "OUT"], ["data", "list"],
                                     ["data", "coldstart", "gsm8k", "OUT", "--base-url", "x",
                                      "--model", "m"]])
def test_every_command_that_names_data_dir_takes_it(cli, clone, recipe, tmp_path, command):
    args = [recipe if a == "RECIPE" else tmp_path / "o.jsonl" if a == "OUT" else a
            for a in command]
    line = cli.refused(*args, "--data-dir", tmp_path / "nowhere")
    assert line == f"error: field '--data-dir': not a directory: {tmp_path / 'nowhere'}"
