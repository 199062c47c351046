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
