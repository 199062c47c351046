"""kill -9 of a running grid (worker processes, 2 at once), then a rerun (slow: real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def grid_cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "parallel_r1", "grid", str(path), "jobs=2"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_mid_grid_then_rerun_redoes_no_finished_node(tmp_path, make_grid):
    path = make_grid(tmp_path, overrides=["stages.rl.max_steps=6"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(grid_cmd(path), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state_file = tmp_path / "grid" / "grid-state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait for some finished nodes and a running RL node
        time.sleep(0.5)
        done = json.loads(state_file.read_text())["nodes"] if state_file.exists() else {}
        rl = list((tmp_path / "grid" / "nodes").glob("rl-*/0-rl/checkpoint-*"))
        if len(done) >= 2 and rl:
            break
    workers = [p for p in children(proc.pid) if p != proc.pid]
    assert workers, "the grid should run its nodes in worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    finished = set(json.loads(state_file.read_text())["nodes"])

    out = subprocess.run(grid_cmd(path), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for label in finished:
        state = json.loads((tmp_path / "grid" / "nodes" / label / "state.json").read_text())
        assert all(s["runs"] == 1 for s in state["stages"].values()), label
    assert json.loads(state_file.read_text())["sessions"][-1]["nodes_run"] == 8 - len(finished)
    assert "SFT then RL" in (tmp_path / "grid" / "report" / "table.md").read_text()
