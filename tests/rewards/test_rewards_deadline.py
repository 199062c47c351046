"""The per-grade time limit: it works on the main thread and on worker threads, a timed-out
grade is wrong and reported, and the grader keeps working afterwards."""

from __future__ import annotations

import threading
import time

import pytest

from parallel_r1.rewards.deadline import GradeTimeout, run_with_limit
from parallel_r1.rewards.grading import grade, grade_detail

SLOW = ("(x+y+z)^{30}", "x^{31}")  # math-verify's simplify takes seconds on this


def _spin():
    while True:
        pass


def test_limit_on_the_main_thread():
    started = time.monotonic()
    with pytest.raises(GradeTimeout):
        run_with_limit(_spin, 0.1)
    assert time.monotonic() - started < 2.0
    assert run_with_limit(lambda: 7, 1.0) == 7


def test_limit_on_worker_threads_leaves_them_usable():
    results = []

    def worker():
        try:
            run_with_limit(_spin, 0.1)
        except GradeTimeout:
            results.append("timeout")
        results.append(sum(range(200_000)))  # no stray exception afterwards

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count("timeout") == 3 and results.count(sum(range(200_000))) == 3


def test_a_slow_grade_times_out_and_counts_wrong_on_any_thread():
    verdict = grade_detail(*SLOW, timeout=0.2)
    assert (verdict.correct, verdict.timed_out) == (False, True)
    out = []
    worker = threading.Thread(target=lambda: out.append(grade_detail(*SLOW, timeout=0.2)))
    worker.start()
    worker.join(30)
    assert out and out[0].timed_out and not out[0].correct
    # After interrupted work the grader still grades right.
    assert grade("18", "18.0") is True and grade("\\frac12", "0.5") is True
    assert grade("(x+1)^2", "x^2+2x+1") is True


def test_timeouts_are_counted_in_the_grade_command(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from parallel_r1.cli import app
    from parallel_r1.rewards import grading

    src = tmp_path / "slow.jsonl"
    src.write_text(json.dumps({"response": f"Final Answer: {SLOW[0]}", "answer": SLOW[1]}) + "\n"
                   + json.dumps({"response": "Final Answer: 3", "answer": "3"}) + "\n")
    monkeypatch.setattr(grading, "TIMEOUT_SECONDS", 0.2)
    out = CliRunner().invoke(app, ["grade", str(src), "-o", str(tmp_path / "out.jsonl")])
    assert "accuracy 0.5000 (1/2)" in out.output and "grades timed out: 1" in out.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["timed_out"] for r in rows] == [True, False]
