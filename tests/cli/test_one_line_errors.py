"""A sentence, not a traceback (issue 20 item 8): a full disk inside `torch.save`, an output
folder this user may not write (`/` as a non-root user), and Ctrl-C with how to resume."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple

RUN = """name: errors
output_dir: {out}
model: {{name: tiny}}
stages:
  - {{kind: sft, data: "synthetic:1:4:0", template: none, max_steps: 1}}
"""


def write_recipe(tmp_path, out) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(RUN.format(out=out))
    return str(path)


def test_a_full_disk_inside_torch_save_is_named(cli, tmp_path, monkeypatch):
    """/dev/full makes torch's zip writer fail as on a full disk ("unexpected pos ...", no
    errno); the disk the run writes to then reports no space left."""
    import torch

    from parallel_r1.train import runner

    def stage(recipe, spec, stage_dir, *args):
        stage_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"exp_avg": torch.zeros(100_000)}, "/dev/full")  # the optimizer state

    usage = namedtuple("usage", "total used free")
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 0)
                        if str(p).startswith(str(tmp_path)) else real_usage(p))
    monkeypatch.setattr(runner, "run_stage", stage)
    line = cli.refused("run", write_recipe(tmp_path, tmp_path / "run"))
    assert line.startswith(f"error: disk full while writing {tmp_path / 'run' / '0-sft'}; "
                           "free some space and rerun")


def test_output_dir_root_as_a_non_root_user_is_one_line(cli, tmp_path, monkeypatch):
    real_open = os.open

    def open_(path, *args, **kwargs):  # what a non-root user meets at `/`
        if str(path).startswith("/.parallel-r1"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    line = cli.refused("run", write_recipe(tmp_path, "/"))
    assert line.startswith("error: / is not empty and was not written by parallel-r1")


def test_an_output_dir_this_user_may_not_create_is_one_line(cli, tmp_path, monkeypatch):
    """Tests run as root, where chmod does not stop a write: the refusal is simulated."""
    locked = tmp_path / "locked"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(locked)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    line = cli.refused("run", write_recipe(tmp_path, locked / "run"))
    assert line == (f"error: {locked / 'run'}: Permission denied; give a path this user may "
                    "read and write (e.g. under your home folder)")


def test_ctrl_c_exits_130_with_how_to_resume(cli, tmp_path, monkeypatch):
    from parallel_r1.train import runner

    def stage(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_stage", stage)
    recipe = write_recipe(tmp_path, tmp_path / "run")
    code, _, err = cli("run", recipe)
    assert code == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"interrupted; kept no stage finished; sft restarts (no checkpoint yet) (in "
        f"{tmp_path / 'run'}); to resume where it stopped, run: parallel-r1 run {recipe}")
