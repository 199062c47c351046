"""A run, eval or grid writes only inside a folder it owns and removes only what it made
(issue 20 item 1), and sees one folder however its path is spelled (item 2: `~`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RUN = """name: owned
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: sft, data: "synthetic:1:4:0", template: none, max_steps: 1}}
"""
# The five user files the probe planted (names an old clean-up took for its temporaries).
PLANTED = {".config.old-laptop/settings.ini": "theme=dark\n",
           "photos/.holiday.2024.tmp.png": "PNG",
           ".draft.tmp-2024/notes.txt": "my notes\n",
           ".bashrc.backup.tmp": "alias ll='ls -l'\n",
           "docs/.old-report.v2.tmp": "v2\n"}


def plant(folder: Path, files: dict[str, str]) -> dict[str, str]:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


def contents(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def write_recipe(tmp_path: Path, out: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(RUN.format(out=out))
    return str(path)


@pytest.mark.parametrize("stage_fails", [False, True])
def test_a_run_refuses_a_users_folder_and_deletes_nothing(cli, tmp_path, monkeypatch,
                                                          stage_fails):
    from parallel_r1.errors import DataError
    from parallel_r1.train import runner

    def stage(*args):
        if stage_fails:
            raise DataError("the stage failed", file="data.jsonl")
        return {}

    monkeypatch.setattr(runner, "run_stage", stage)
    home = tmp_path / "mine"
    before = plant(home, {**PLANTED, "thesis.tex": "\\begin{document}"})
    line = cli.refused("run", write_recipe(tmp_path, str(home)))
    assert line == (f"error: {home} is not empty and was not written by parallel-r1 (it has no "
                    ".parallel-r1-output); outputs go only into a new or empty folder: give "
                    "another one (if it really is an output of parallel-r1, create an empty "
                    ".parallel-r1-output in it)")
    assert contents(home) == before  # nothing removed, nothing added (not even a lock)


def test_eval_out_refuses_a_users_folder_and_overwrites_nothing(cli, tmp_path):
    out = tmp_path / "notes"
    before = plant(out, {"config.json": '{"mine": true}\n', "table.md": "| my | table |\n",
                         ".config.old-laptop/settings.ini": "x=1\n"})
    line = cli.refused("eval", "tiny", "--benchmarks", "synthetic-l1", "--limit", "1",
                       "--samples", "1", "--max-tokens", "4", "--out", out)
    assert line.startswith(f"error: {out} is not empty and was not written by parallel-r1")
    assert contents(out) == before


def test_a_grid_refuses_a_users_folder(cli, tmp_path, monkeypatch):
    from parallel_r1.train import grid_runner

    monkeypatch.setattr(grid_runner, "_run", lambda *a: pytest.fail("the grid ran"))
    out = tmp_path / "mine"
    before = plant(out, PLANTED)
    line = cli.refused("grid", "--mini", "--quick", "--out", out)
    assert line.startswith(f"error: {out} is not empty and was not written by parallel-r1")
    assert contents(out) == before


def test_a_failing_run_in_its_own_folder_removes_only_its_own_temporaries(cli, tmp_path,
                                                                          monkeypatch):
    """A user's files inside a run dir survive a rerun whose stage then fails; what our own
    writers leave when killed (names from `outputs.temp_name`) goes."""
    from parallel_r1.errors import DataError
    from parallel_r1.train import runner

    def stage(*args):
        raise DataError("the stage failed", file="data.jsonl")

    monkeypatch.setattr(runner, "run_stage", stage)
    run = tmp_path / "run"
    (run / "0-sft").mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"stages": {}}))  # a run of an older version:
    (run / ".parallel-r1.lock").write_text("")  # its state and its writer lock
    kept = plant(run, PLANTED)
    ours = [run / ".state.json.parallel-r1-tmp-ab12cd_x",
            run / "0-sft" / ".model.parallel-r1-tmp-12-ab12cd34"]
    ours[0].write_text("{")
    ours[1].mkdir()
    line = cli.refused("run", write_recipe(tmp_path, str(run)))
    assert line == "error: data.jsonl: the stage failed"
    after = contents(run)
    assert {k: after.get(k) for k in kept} == kept
    assert not any(p.exists() for p in ours)
    assert (run / ".parallel-r1-output").is_file()  # adopted: an old run still resumes


def test_tilde_output_dir_puts_lock_state_and_weights_in_one_folder(cli, tmp_path, monkeypatch):
    from parallel_r1.train import stages

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(stages, "run_sft", lambda model, *a: (model, {}))  # no training
    code, out, err = cli("run", write_recipe(tmp_path, "~/runs/x"))
    assert code == 0, err
    run = home / "runs" / "x"
    assert (run / ".parallel-r1.lock").is_file() and (run / "state.json").is_file()
    assert (run / "0-sft" / "model" / "model.safetensors").is_file()
    state = json.loads((run / "state.json").read_text())
    assert state["stages"]["sft"]["model"] == str(run / "0-sft" / "model")
    assert list(cwd.iterdir()) == []  # no literal ./~ folder


def test_two_writers_through_tilde_and_home_are_one_writer(cli, tmp_path, monkeypatch,
                                                           hold_lock):
    from parallel_r1.train import runner

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_stage", lambda *a: pytest.fail("the second writer ran"))
    pid = hold_lock(home / "runs" / "x")  # the first writer, through $HOME
    line = cli.refused("run", write_recipe(tmp_path, "~/runs/x"))
    assert line.startswith(f"error: {home / 'runs' / 'x'} is in use by pid {pid} on ")
    assert not (tmp_path / "~").exists()


def test_the_demo_refuses_a_users_folder(cli, tmp_path, monkeypatch):
    from parallel_r1.train import runner

    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("the demo ran"))
    out = tmp_path / "mine"
    before = plant(out, {**PLANTED, "table.md": "| mine |\n"})
    line = cli.refused("demo", "--quick", "--out", out)
    assert line.startswith(f"error: {out} is not empty and was not written by parallel-r1")
    assert contents(out) == before


def test_a_grid_report_dir_that_is_a_users_folder_is_refused(cli, tmp_path):
    out = tmp_path / "mine"
    before = plant(out, {"report.md": "# my report\n", "table.md": "| mine |\n"})
    line = cli.refused("grid", "--mini", "--quick", "--out", tmp_path / "g", "--report-only",
                       "--report-dir", out)
    assert line.startswith(f"error: {out} is not empty and was not written by parallel-r1")
    assert contents(out) == before


def test_a_quoted_tilde_is_the_home_folder_for_every_command(tmp_path):
    """`data synthetic '~/syn.jsonl'` wrote a literal ./~ folder (issue 20: paths expanded once,
    at the entry point, for every command)."""
    import os
    import subprocess
    import sys

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "parallel_r1", "data", "synthetic", "~/syn.jsonl"],
                          cwd=work, env={**os.environ, "HOME": str(home)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (home / "syn.jsonl").is_file() and not (work / "~").exists()
