"""Commands refuse bad input and a second writer with one `error:` line (exit 2) before any work:
issue 12 items 1 (one writer), 4 (everything resolved up front) and 5 (no tracebacks)."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

RECIPE = """name: refusals
output_dir: {out}
model: {{name: tiny}}
stages:
  - kind: sft
    data: "{sft}"
    template: none
    max_steps: 1
  - kind: eval
    eval:
      benchmarks: synthetic-l1
      limit: 1
"""


@pytest.fixture
def recipe(tmp_path):
    """recipe(sft=..., **text replacements) -> path of a two-stage recipe writing tmp/run."""

    def make(sft: str = "synthetic:1:4:0", old: str = "", new: str = "") -> str:
        path = tmp_path / "r.yaml"
        path.write_text(RECIPE.format(out=tmp_path / "run", sft=sft).replace(old, new))
        return str(path)

    return make


# ---------------------------------------------------------------- item 1: one writer per output

def test_second_run_on_one_output_dir_is_refused_at_once(cli, recipe, hold_lock, tmp_path):
    pid = hold_lock(tmp_path / "run")
    started = time.monotonic()
    line = cli.refused("run", recipe())
    assert time.monotonic() - started < 5
    assert f"{tmp_path / 'run'} is in use by pid {pid} on " in line
    assert "(parallel-r1 run first.yaml), since 20" in line
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".parallel-r1-output",
                                                                    ".parallel-r1.lock"]


def test_second_eval_on_one_out_dir_is_refused_before_loading(cli, hold_lock, tmp_path):
    pid = hold_lock(tmp_path / "ev")
    line = cli.refused("eval", "tiny", "--benchmarks", "synthetic-l1", "--out", tmp_path / "ev")
    assert f"pid {pid}" in line and "is in use by" in line


def test_second_coldstart_on_one_log_is_refused(cli, hold_lock, tmp_path):
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"id": "a", "question": "1+1", "answer": "2"}) + "\n")
    pid = hold_lock(tmp_path, ".log.jsonl.lock")
    line = cli.refused("data", "coldstart", problems, tmp_path / "log.jsonl", "--base-url",
                       "http://127.0.0.1:9/v1", "--model", "m", "--no-progress")
    assert f"pid {pid}" in line and not (tmp_path / "log.jsonl").exists()
    assert f"{tmp_path / 'log.jsonl'} is in use" in line, line  # the log, not its directory


# ---------------------------------------------------------------- item 4: resolved up front

@pytest.mark.parametrize("old, new, words", [
    ('data: "synthetic:1:4:0"', "data: missing/sft.jsonl",
     ["file not found: missing/sft.jsonl", "recipe field stages.sft.data", "r.yaml:6"]),
    ("benchmarks: synthetic-l1", "benchmarks: synthetic-l9",
     ["unknown benchmark 'synthetic-l9'", "known: aime24", "stages.eval.eval.benchmarks",
      "r.yaml:11"]),
    ("max_steps: 1", "max_steps: 2.5",
     ["r.yaml:8, field 'stages.sft.max_steps': expected an integer, got float 2.5"]),
    ("eval:\n      benchmarks: synthetic-l1\n      limit: 1", "eval: fast",
     ["r.yaml:10, field 'stages.eval.eval': expected a mapping, got 'fast'"]),
    ("limit: 1", "limit: [1]", ["field 'stages.eval.eval.limit': expected an integer, got list"]),
    ("limit: 1", "graders: [math-verify, nope]", ["unknown grader 'nope'"]),
    ("template: none", "template: nope", ["unknown template 'nope'", "stages.sft.template"]),
    ("limit: 1", "temperature: -1", ["stages.eval.eval.temperature", "must be >= 0", "got -1.0"]),
    ("limit: 1", "max_path_tokens: 1", ["stages.eval.eval.max_path_tokens", "must be >= 2"]),
])
def test_check_and_run_resolve_every_stage_before_any_work(cli, recipe, tmp_path, old, new,
                                                           words):
    path = recipe(old=old, new=new)
    for command in (["run", path, "--check"], ["run", path]):
        line = cli.refused(*command)
        assert all(w in line for w in words), line
    assert not [p for p in (tmp_path / "run").glob("*") if not p.name.startswith(".")]


@pytest.mark.parametrize("override, words", [
    ("stages.rl.reward={kind: nope}", ["'stages.rl.reward'", "unknown reward schedule 'nope'"]),
    ("stages.rl.reward=nope", ["'stages.rl.reward'", "unknown reward 'nope'; known: "]),
    ("stages.rl.reward=[a, b]", ["'stages.rl.reward'", "expected a reward name"]),
    ("stages.rl.reward={accuracy_reward: [1]}", ["weight of 'accuracy_reward' must be a number"]),
    ("stages.rl.grader=nope", ["'stages.rl.grader'", "unknown grader 'nope'"]),
    ("stages.rl.num_paths=1.5", ["'stages.rl.num_paths'", "must be an integer >= 2"]),
    ("stages.rl.max_tokens=-5", ["'stages.rl.max_tokens'", "must be >= 1, got -5"]),
    ("stages.rl.max_path_tokens=-3", ["'stages.rl.max_path_tokens'", "must be >= 2"]),
    ("stages.rl.temperature=-1", ["'stages.rl.temperature'", "must be >= 0"]),
    ("stages.rl.max_length=-7", ["'stages.rl.max_length'", "must be >= 1"]),
    ("stages.rl.dump_every=-1", ["'stages.rl.dump_every'", "must be >= 0"]),
])
def test_rewards_graders_and_schedules_are_resolved_up_front(cli, tmp_path, override, words):
    path = tmp_path / "rl.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\nstages:\n  - {{kind: rl, max_steps: 2}}\n")
    line = cli.refused("run", path, override)
    assert all(w in line for w in words), line
    assert not (tmp_path / "run").exists()


def test_run_check_lists_what_each_stage_resolved(cli, recipe):
    code, out, _ = cli("run", recipe(), "--check")
    assert code == 0 and "sft: sft on synthetic:1:4:0 (4 records)" in out
    assert "eval: eval synthetic-l1" in out


def test_overrides_are_named_as_the_source_of_a_bad_value(cli, recipe):
    line = cli.refused("run", recipe(), "--check", "stages.sft.learning_rate=[1]")
    assert line == ("error: override stages.sft.learning_rate=[1], field "
                    "'stages.sft.learning_rate': expected a number, got list [1]")


# ---------------------------------------------------------------- item 5: one line, no traceback

def _bad_utf8(path):
    path.write_bytes(b'{"question": "1+1", "answer": "2", "trajectory": "ok"}\n'
                     b'{"question": "caf\xe9", "answer": "2", "trajectory": "ok"}\n')
    return path


def test_non_utf8_data_is_named_by_file_and_line(cli, recipe, tmp_path):
    data = _bad_utf8(tmp_path / "bad.jsonl")
    for command in (["run", recipe(sft=str(data))],
                    ["data", "prepare", data, tmp_path / "out.jsonl"]):
        line = cli.refused(*command)
        assert f"{data}:2: not UTF-8 text: byte 0xe9" in line, line
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("command", [
    ["check-format", "{empty}"], ["grade", "{empty}"],
    ["data", "prepare", "{empty}", "{out}"], ["run", "{recipe}"]])
def test_empty_input_files_are_refused(cli, recipe, tmp_path, command):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    values = {"empty": empty, "out": tmp_path / "out.jsonl", "recipe": recipe(sft=str(empty))}
    line = cli.refused(*[part.format(**values) for part in command])
    assert f"{empty}: empty file" in line
    assert not (tmp_path / "out.jsonl").exists()


def test_sft_rows_without_a_trace_are_refused_up_front(cli, recipe, tmp_path):
    data = tmp_path / "plain.jsonl"
    data.write_text(json.dumps({"question": "1+1", "answer": "2"}) + "\n")
    line = cli.refused("run", recipe(sft=str(data)))
    assert "has no trace" in line and "stages.sft.data" in line


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_in_data_prepare_is_one_line(cli, tmp_path, monkeypatch, sample_data):
    monkeypatch.setattr(os, "fsync", _full)
    out = tmp_path / "prompts.jsonl"
    line = cli.refused("data", "prepare", sample_data / "amc23.jsonl", out)
    assert line.startswith(f"error: disk full while writing {out}")
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_full_disk_in_eval_is_one_line(cli, tmp_path, monkeypatch):
    real_write = os.write

    def write(fd, data):  # the samples log is the only os.write user in an eval
        if b'"benchmark"' in bytes(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    out = tmp_path / "ev"
    line = cli.refused("eval", "tiny", "--benchmarks", "synthetic-l1", "--limit", "1",
                       "--samples", "1", "--max-tokens", "4", "--out", out)
    assert line.startswith(f"error: disk full while writing {out / 'samples.jsonl'}")


def test_full_disk_in_a_run_is_one_line(cli, recipe, tmp_path, monkeypatch):
    from parallel_r1.train import runner

    def stage(*args, **kwargs):  # where the trainer's checkpoint write fails
        raise OSError(errno.ENOSPC, "No space left on device",
                      str(tmp_path / "run" / "0-sft" / "checkpoint-1" / "model.safetensors"))

    monkeypatch.setattr(runner, "run_stage", stage)
    line = cli.refused("run", recipe())
    assert line.startswith("error: disk full while writing "
                           f"{tmp_path / 'run' / '0-sft' / 'checkpoint-1' / 'model.safetensors'}")


def test_full_disk_in_coldstart_is_one_line(cli, tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = Path(__file__).parents[1] / "data" / "openai_stub_server.py"
    server = subprocess.Popen([sys.executable, str(stub), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("READY")
        problems = tmp_path / "p.jsonl"
        problems.write_text("".join(json.dumps({"id": f"p{i}", "question": f"{i}+1",
                                                "answer": str(i + 1)}) + "\n" for i in range(6)))
        monkeypatch.setattr(os, "write", _full)
        log = tmp_path / "log.jsonl"
        line = cli.refused("data", "coldstart", problems, log, "--base-url",
                           f"http://127.0.0.1:{port}/v1", "--model", "stub", "--no-progress")
    finally:
        server.kill()
        server.wait()
    assert line.startswith(f"error: disk full while writing {log}")


def test_a_vllm_stage_without_vllm_is_refused_up_front(cli, tmp_path):
    """`backend: vllm` where vllm is not installed: refused at --check, not after earlier stages."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    path = tmp_path / "rl.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\nstages:\n  - {{kind: sft, max_steps: 1}}\n"
                    "  - {kind: rl, max_steps: 2, backend: vllm, mode: causal}\n")
    for command in (["run", path, "--check"], ["run", path]):
        line = cli.refused(*command)
        assert "vllm is not installed" in line and "stages.rl.backend" in line, line
        assert "rl.yaml:4" in line, line
    assert not [p for p in (tmp_path / "run").glob("*") if not p.name.startswith(".")]


def test_a_server_url_must_be_a_url(cli, tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\nstages:\n  - {{kind: rl, max_steps: 2, "
                    "backend: vllm, mode: causal, vllm_mode: server, vllm_server_url: 12}\n")
    line = cli.refused("run", path, "--check")
    assert "stages.rl.vllm_server_url" in line and "must be a URL" in line, line


def test_temperature_0_in_an_rl_stage_is_refused_before_any_stage(cli, tmp_path):
    """Issue 19 case 4: it passed --check, then TRL's log-prob kernel divided by it."""
    path = tmp_path / "rl.yaml"
    path.write_text(f"output_dir: {tmp_path / 'run'}\nstages:\n  - {{kind: sft, max_steps: 1}}\n"
                    "  - kind: rl\n    max_steps: 2\n    temperature: 0\n")
    for command in (["run", path, "--check"], ["run", path]):
        line = cli.refused(*command)
        assert line.startswith(f"error: {path}:6, field 'stages.rl.temperature': an rl stage "
                               "needs temperature > 0"), line
    assert not [p for p in (tmp_path / "run").glob("*") if not p.name.startswith(".")]
