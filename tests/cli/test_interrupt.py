"""Ctrl-C prints one line: what was kept and the exact command that resumes (issue 22 item 7).
A real subprocess gets SIGINT once it has written work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from parallel_r1.cli.interrupt import describe, interrupted_line
from parallel_r1.files import program


def test_eval_interrupted_after_some_samples_says_how_many_and_how_to_resume(tmp_path):
    out = tmp_path / "ev"
    # 2,000 samples, about 25 s of work on an idle core: the interrupt, sent once 2 samples are
    # written, must land while it runs (100 samples once finished before it on an idle machine)
    args = ["eval", "tiny", "--benchmarks", "synthetic-l1", "--limit", "500", "--samples", "4",
            "--max-tokens", "40", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PARALLEL_R1_PROGRESS": "0"}
    # Ctrl-C's default action, even where the suite itself runs with SIGINT ignored (a job
    # started with `&` or nohup), whose children would otherwise ignore the interrupt too
    proc = subprocess.Popen([sys.executable, "-m", "parallel_r1", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    samples, deadline = out / "samples.jsonl", time.monotonic() + 300
    while not (samples.is_file() and samples.read_bytes().count(b"\n") >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    kept = sum(1 for line in samples.read_text().splitlines() if line.strip())
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (
        f"interrupted; kept {kept} graded samples in {out}; to resume where it stopped, run: "
        f"{' '.join(program('__main__.py'))} {' '.join(args)}")  # as run: python -m
    assert kept >= 2


def test_a_run_folder_tells_its_finished_stages_and_newest_checkpoint(tmp_path):
    run = tmp_path / "run"
    for folder in ("0-sft/model", "1-rl/checkpoint-2", "1-rl/checkpoint-10"):
        (run / folder).mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"stages": {
        "sft": {"status": "done"}, "rl": {"status": "running"}}}))
    assert describe(run) == f"stages done: sft; rl from checkpoint-10 (in {run})"
    grid = tmp_path / "grid"
    grid.mkdir()
    (grid / "grid-state.json").write_text(json.dumps({"nodes": {"a": {}, "b": {}}}))
    assert describe(grid) == f"2 finished nodes (in {grid})"
    log = tmp_path / "traces.jsonl"
    log.write_text('{"id": 1}\n{"id": 2}\n\n')
    assert describe(log) == f"2 records in {log}"
    assert describe(tmp_path / "empty") is None


def test_only_the_outermost_folder_is_told_and_other_commands_leave_nothing_partial(tmp_path):
    run = tmp_path / "run"
    (run / "0-eval").mkdir(parents=True)
    (run / "0-eval" / "samples.jsonl").write_text("{}\n")
    (run / "state.json").write_text(json.dumps({"stages": {"eval": {"status": "running"}}}))
    line = interrupted_line("parallel-r1 demo", ["demo"], [tmp_path, run, run / "0-eval"])
    assert line == (f"interrupted; kept no stage finished; eval restarts (no checkpoint yet) "
                    f"(in {run}); to resume where it stopped, run: parallel-r1 demo")
    assert interrupted_line("parallel-r1 data synthetic x.jsonl", ["data", "synthetic"],
                            [Path("x")]) == ("interrupted; outputs are written whole, so nothing "
                                             "half-written was left")
