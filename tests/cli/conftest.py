"""Run the real `parallel-r1` entry point in this process (so a test can simulate a full disk),
and hold an output's writer lock from another process."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest


@pytest.fixture
def cli(monkeypatch, capsys):
    """cli(*args) -> (exit code, stdout, stderr) of `parallel-r1 ARGS` through `cli.main`.

    `cli.refused(*args)` runs it and returns the one `error: ...` line it must print (exit 2,
    no traceback)."""
    from parallel_r1.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["parallel-r1", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    def refused(*args: str) -> str:
        code, _, err = run(*args)
        errors = [line for line in err.replace("\r", "\n").splitlines()
                  if line.startswith("error: ")]
        assert code == 2 and len(errors) == 1 and "Traceback" not in err, (code, err)
        return errors[0]

    run.refused = refused
    return run


@pytest.fixture
def hold_lock():
    """hold_lock(dir, name=...) -> pid of another process holding that writer lock."""
    procs = []

    def hold(directory, name: str = ".parallel-r1.lock") -> int:
        code = ("import time; from parallel_r1.files import one_writer\n"
                f"with one_writer({str(directory)!r}, 'parallel-r1 run first.yaml', "
                f"name={name!r}):\n    print('held', flush=True); time.sleep(120)")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc.pid

    yield hold
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
