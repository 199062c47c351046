"""Atomic output files."""

import json
import os

import pytest

from parallel_r1.files import write_jsonl_atomic, write_text_atomic


def test_writes_whole_files_readable_by_others(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    assert write_jsonl_atomic(path, ({"i": i, "s": "é"} for i in range(3))) == 3
    assert [json.loads(line)["i"] for line in path.read_text(encoding="utf-8").splitlines()] == [
        0, 1, 2]
    assert os.stat(path).st_mode & 0o044  # not mkstemp's private 0600
    assert list(path.parent.iterdir()) == [path]  # no temp file left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old")

    def rows():
        yield {"a": 1}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(path, rows())
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_read_jsonl_names_file_line_and_field(tmp_path):
    from parallel_r1.errors import DataError
    from parallel_r1.files import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_text('{"q": "a\u2028b", "n": 3}\n\n{"q": "c", "n": true}\n', encoding="utf-8")
    rows = read_jsonl(path, {"q": (str,), "n": (str, int)})
    assert next(rows) == (1, {"q": "a\u2028b", "n": 3})  # U+2028 does not end a line
    with pytest.raises(DataError, match=r"rows.jsonl:3, field 'n': field is a bool, not a string "
                                        r"or a number"):
        next(rows)


# ------------------------------------------------------------------ one writer, logs, full disk

def test_second_writer_is_refused_naming_the_holder_and_kill_9_releases(tmp_path):
    import signal
    import subprocess
    import sys

    from parallel_r1.files import WriterLockedError, one_writer

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from parallel_r1.files import one_writer\n"
         f"with one_writer({str(tmp_path)!r}, 'parallel-r1 run a.yaml'):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterLockedError) as err, one_writer(tmp_path, "second"):
            pass
        message = str(err.value)
        assert f"pid {holder.pid}" in message and "parallel-r1 run a.yaml" in message
        assert "since 20" in message and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with one_writer(tmp_path, "third") as lock:  # kill -9 released it
        with one_writer(tmp_path, "nested"):  # the holder may enter again
            assert json.loads(lock.read_text())["command"] == "third"


def test_dedupe_keeps_the_last_row_of_each_key_in_first_seen_order():
    from parallel_r1.files import dedupe, step_key

    rows = [{"step": 1, "v": "a"}, {"step": 2, "v": "b"}, {"step": 1, "v": "c"},
            {"step": 2, "train_runtime": 3.0}]
    assert dedupe(rows, step_key) == [{"step": 1, "v": "c"}, {"step": 2, "v": "b"},
                                      {"step": 2, "train_runtime": 3.0}]


def test_trim_log_keeps_lines_byte_for_byte_and_drops_a_torn_tail(tmp_path):
    from parallel_r1.files import trim_log

    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "x": "\xc3\xa9"}\n{"step": 2}\n{"step": 3}\n{"step": 4, "lo')
    assert trim_log(path, lambda row: row["step"] <= 2) == 1
    assert path.read_bytes() == b'{"step": 1, "x": "\xc3\xa9"}\n{"step": 2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_a_full_disk_is_named_in_every_writer(tmp_path, monkeypatch):
    import errno

    from parallel_r1.files import DiskFullError, append_jsonl, append_rows

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    for write in (lambda p: write_text_atomic(p, "x"), lambda p: append_jsonl(p, {"a": 1}),
                  lambda p: append_rows(p, [{"a": 1}, {"b": 2}])):
        target = tmp_path / "out.jsonl"
        with pytest.raises(DiskFullError, match=f"disk full while writing {target}"):
            write(target)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["out.jsonl"])  # no temp left


def test_remove_temporaries_clears_what_killed_writers_leave(tmp_path):
    from parallel_r1.outputs import remove_temporaries

    keep = [tmp_path / "state.json", tmp_path / "0-sft" / "model" / "config.json",
            tmp_path / ".parallel-r1.lock", tmp_path / ".state.json.k2j3h4.tmp",
            tmp_path / "0-sft" / ".model.tmp-12-ab12cd34"]  # old-style names: maybe a user's
    stale = [tmp_path / ".state.json.parallel-r1-tmp-k2j3h4_9",
             tmp_path / "0-sft" / ".model.parallel-r1-tmp-12-ab12cd34",
             tmp_path / "0-sft" / ".model.parallel-r1-old-12-ab12cd34",
             tmp_path / "2-eval" / ".summary.json.parallel-r1-tmp-x",
             tmp_path / "2-eval" / ".curve.parallel-r1-tmp-1-ab12cd34.png"]
    for path in keep + stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.startswith(".model."):
            path.mkdir()
            (path / "model.safetensors").write_bytes(b"0" * 100)
        else:
            path.write_text("{}")
    assert sorted(remove_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


@pytest.mark.parametrize("content, match", [
    (b"", r"empty file: no JSON records"),
    (b"\n  \n", r"empty file: no JSON records"),
    (b'{"q": "ok"}\n{"q": "caf\xe9"}\n', r"rows.jsonl:2: not UTF-8 text: byte 0xe9 at column 11"),
])
def test_read_jsonl_refuses_empty_and_non_utf8_files(tmp_path, content, match):
    from parallel_r1.errors import DataError
    from parallel_r1.files import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        list(read_jsonl(path))
