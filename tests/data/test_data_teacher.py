"""The cold-start client against a real HTTP server process on loopback: retries, kill, resume."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from parallel_r1.data.sources import Record
from parallel_r1.data.teacher import (
    TeacherConfig,
    TeacherUnreachable,
    generate,
    postprocess,
    read_log,
)
from parallel_r1.errors import ConfigError, DataError

SERVER = Path(__file__).with_name("openai_stub_server.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


@pytest.fixture
def server_factory():
    procs: list[subprocess.Popen] = []

    def start(port: int, *args: str) -> subprocess.Popen:
        procs.append(start_server(port, *args))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def problems(n: int) -> list[Record]:
    return [Record(f"p{i:03d}", f"What is {i} + {i + 1}?", str(2 * i + 1), "test")
            for i in range(n)]


def config(port: int, **kwargs) -> TeacherConfig:
    base = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "stub", "max_concurrency": 4,
                "max_retries": 3, "backoff_s": 0.02, "max_backoff_s": 0.1, "timeout_s": 10}
    return TeacherConfig(**(base | kwargs))


def log_ids(path: Path) -> Counter:
    return Counter(json.loads(line)["id"] for line in path.read_text().split("\n")[:-1])


def wait_for_lines(path: Path, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def test_all_answered_and_postprocessed(tmp_path, server_factory):
    port = free_port()
    server_factory(port)
    out = tmp_path / "log.jsonl"
    metrics = generate(problems(12), out, config=config(port), show_progress=False)
    assert (metrics["num_done"], metrics["num_failed"], metrics["num_skipped"]) == (12, 0, 0)
    assert log_ids(out) == Counter({f"p{i:03d}": 1 for i in range(12)})
    row = json.loads(out.read_text().splitlines()[0])
    assert {"id", "question", "answer", "prompt", "output", "model"} <= row.keys()
    assert "<Parallel>" in row["prompt"]  # the parallel template was sent
    report = postprocess(out, tmp_path / "sft.jsonl")
    assert report["num_kept"] == 12 and report["answer_accuracy"] == 1.0
    assert report["blocks_per_trace"] == {1: 12} and report["paths_per_block"] == {2: 12}
    again = generate(problems(12), out, config=config(port), show_progress=False)
    assert again["num_skipped"] == 12 and again["num_done"] == 0
    assert sum(log_ids(out).values()) == 12


def test_retries_429_and_5xx_honouring_retry_after(tmp_path, server_factory):
    port = free_port()
    server_factory(port, "--fail-first", "2", "--retry-after", "0.3")
    start = time.monotonic()
    metrics = generate(problems(6), tmp_path / "log.jsonl", show_progress=False,
                       config=config(port, backoff_s=0.0))
    assert metrics["num_done"] == 6 and metrics["num_failed"] == 0
    assert metrics["num_retries"] == 12  # each problem: one 429, one 503
    assert time.monotonic() - start >= 0.3  # the 429's Retry-After was waited out
    assert sum(log_ids(tmp_path / "log.jsonl").values()) == 6


def test_non_retryable_error_fails_at_once(tmp_path, server_factory):
    port = free_port()
    server_factory(port)
    bad = [Record("bad", "BAD REQUEST 1", "1", "test"), *problems(2)]
    metrics = generate(bad, tmp_path / "log.jsonl", config=config(port), show_progress=False)
    assert metrics["num_done"] == 2 and metrics["num_retries"] == 0
    assert metrics["failures"]["bad"].startswith("HTTP 400")


def test_server_killed_mid_run_stops_the_run_then_rerun_completes_exactly_once(
        tmp_path, server_factory):
    port, out, todo = free_port(), tmp_path / "log.jsonl", problems(24)
    server = server_factory(port, "--delay", "0.15")
    first: dict = {}
    cfg = config(port, max_retries=6, backoff_s=0.5, max_backoff_s=4.0)  # hours if per problem

    def run() -> None:
        try:
            generate(todo, out, config=cfg, show_progress=False)
        except TeacherUnreachable as exc:
            first.update(error=str(exc), at=time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    wait_for_lines(out, 6)
    server.send_signal(signal.SIGKILL)
    server.wait()
    killed = time.monotonic()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert first["at"] - killed < 5  # 8 connection failures in a row across the 4 workers
    num_done = len(log_ids(out))
    assert f"teacher at http://127.0.0.1:{port}/v1 is unreachable" in first["error"]
    assert f"; {num_done} of 24 problems done, kept in {out}" in first["error"]
    assert all(c == 1 for c in log_ids(out).values())
    server_factory(port)  # restarted on the same port
    second = generate(todo, out, config=config(port), show_progress=False)
    assert second["num_skipped"] == num_done and second["num_failed"] == 0
    assert log_ids(out) == Counter({r.id: 1 for r in todo})


def test_dead_teacher_fails_in_seconds_naming_the_url(tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(TeacherUnreachable) as err:  # the CLI's retry defaults: 255 s before
        generate(problems(40), tmp_path / "log.jsonl", show_progress=False,
                 config=TeacherConfig(base_url=f"http://127.0.0.1:{port}/v1", model="stub"))
    assert time.monotonic() - started < 5
    assert str(err.value).startswith(f"teacher at http://127.0.0.1:{port}/v1 is unreachable "
                                     "(ConnectError")
    assert "; 0 of 40 problems done" in str(err.value)


def test_postprocess_counts_an_id_written_twice_once(tmp_path, server_factory):
    port = free_port()
    server_factory(port)
    out = tmp_path / "log.jsonl"
    generate(problems(5), out, config=config(port), show_progress=False)
    out.write_text(out.read_text() * 2)  # what two writers on one log used to leave
    report = postprocess(out, tmp_path / "sft.jsonl")
    assert report["num_rows"] == report["num_kept"] == 5 and report["num_duplicates"] == 5
    kept = [json.loads(x)["id"] for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert sorted(kept) == [f"p{i:03d}" for i in range(5)]
    assert len(read_log(out)[0]) == 5


def test_client_killed_mid_write_then_rerun_repairs_and_completes(tmp_path, server_factory):
    port, out = free_port(), tmp_path / "log.jsonl"
    server_factory(port, "--delay", "0.1")
    todo = problems(20)
    source = tmp_path / "problems.jsonl"
    source.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in todo))
    client = subprocess.Popen(
        [sys.executable, "-m", "parallel_r1", "data", "coldstart", str(source), str(out),
         "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "stub", "--concurrency", "2",
         "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_lines(out, 4)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    with out.open("ab") as handle:  # what a crash inside a write would leave behind
        handle.write(b'{"id": "p019", "output": "half a li')
    done_before = len(log_ids_tolerant(out))
    assert 4 <= done_before < 20
    metrics = generate(todo, out, config=config(port), show_progress=False)
    assert metrics["num_repaired_bytes"] > 0 and metrics["num_skipped"] == done_before
    assert log_ids(out) == Counter({r.id: 1 for r in todo})


def log_ids_tolerant(path: Path) -> set[str]:
    lines = path.read_bytes().split(b"\n")[:-1]  # the partial last line has no newline
    return {json.loads(line)["id"] for line in lines}


def test_read_log_rejects_a_broken_middle_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"id": "a"}\n{"id": \n{"id": "b"}\n')
    with pytest.raises(DataError) as err:
        read_log(log)
    assert str(err.value).startswith(f"{log}:2: invalid JSON")
    a = json.dumps({"id": "a", "output": "x\u2028y"}, ensure_ascii=False) + "\n"
    log.write_text(a + '{"id": "b"')  # U+2028 is a line break to str.splitlines, not to JSONL
    rows, metrics = read_log(log)
    assert list(rows) == ["a"] and metrics["num_repaired_bytes"] == len('{"id": "b"')
    assert log.read_text() == a


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match="field 'max_concurrency'"):
        TeacherConfig(max_concurrency=0)
    with pytest.raises(ConfigError, match="field 'base_url'"):
        TeacherConfig(base_url="localhost:8000")


def test_key_comes_from_the_environment(tmp_path, server_factory, monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test")
    port, requests = free_port(), tmp_path / "requests.log"
    server_factory(port, "--log", str(requests))
    cfg = config(port, api_key_env="MY_TEACHER_KEY")
    assert generate(problems(1), tmp_path / "l.jsonl", config=cfg,
                    show_progress=False)["num_done"] == 1
    assert requests.read_text() == "200 Bearer sk-test What is 0 + 1?\n"
