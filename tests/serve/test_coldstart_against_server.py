"""The cold-start client (data.teacher) against our own server process, killed and restarted.

Run 1 is cut by a SIGKILL of the server while requests are in flight: it stops with one error
naming the URL and how far it got; the rerun against a restarted server on the same port answers
the rest, and the log holds every problem once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from parallel_r1.data.sources import Record
from parallel_r1.data.teacher import TeacherConfig, TeacherUnreachable, generate, postprocess

pytest.importorskip("fastapi")

NUM_PROBLEMS = 10


def problems() -> list[Record]:
    return [Record(f"p{i:02d}", f"What is {i} + {i + 1}?", str(2 * i + 1), "test")
            for i in range(NUM_PROBLEMS)]


def wait_for_lines(path, n: int, thread: threading.Thread, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {n} lines")


def test_kill_restart_rerun_answers_every_problem_once(tmp_path, server_factory, monkeypatch):
    monkeypatch.setenv("PARALLEL_R1_TEST_KEY", "coldstart-key")
    server = server_factory(None, api_key="coldstart-key")
    config = TeacherConfig(base_url=server.base + "/v1", model="tiny",
                           api_key_env="PARALLEL_R1_TEST_KEY", max_concurrency=2,
                           max_retries=1, backoff_s=0.05, max_backoff_s=0.1, timeout_s=30,
                           temperature=1.0, max_tokens=48)
    out = tmp_path / "coldstart.jsonl"
    first: dict = {}

    def run_once() -> None:
        try:
            generate(problems(), out, config=config, show_progress=False)
        except TeacherUnreachable as exc:  # the teacher died: the whole run stops at once
            first["error"] = str(exc)

    run = threading.Thread(target=run_once)
    run.start()
    wait_for_lines(out, 2, run)
    server.kill()  # SIGKILL with requests in flight
    run.join(timeout=60)
    assert not run.is_alive()
    num_done = len(out.read_text().splitlines())
    assert num_done >= 2
    assert f"teacher at {server.base}/v1 is unreachable" in first["error"]
    assert f"{num_done} of {NUM_PROBLEMS} problems done" in first["error"]

    server_factory(server.port, api_key="coldstart-key")  # the restart, same address
    second = generate(problems(), out, config=config, show_progress=False)
    assert second["num_skipped"] == num_done
    assert second["num_done"] == NUM_PROBLEMS - num_done
    assert second["num_failed"] == 0, second["failures"]

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(r["id"] for r in rows) == Counter({r.id: 1 for r in problems()})
    assert all(r["model"] == "tiny" and isinstance(r["output"], str) for r in rows)
    assert all(r["usage"]["completion_tokens"] <= 48 for r in rows)
    assert postprocess(out)["num_rows"] == NUM_PROBLEMS
