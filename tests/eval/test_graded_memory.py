"""`grade` and `check-format` stream rows (memory does not grow with their number) and refuse a
line over the trace size limit with its file and line, having read no more of it than the limit."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from typer.testing import CliRunner

from parallel_r1.cli import app
from parallel_r1.errors import DataError
from parallel_r1.eval.graded import grade_file

RESPONSE = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 7"


def write_rows(path, num_rows: int, response: str = RESPONSE):
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(num_rows):
            handle.write(json.dumps({"id": i, "response": response, "answer": "7",
                                     "raw": response}) + "\n")
    return path


def peak_bytes(call, *args, **kwargs) -> int:
    """Peak bytes Python allocated during `call(*args, **kwargs)`."""
    tracemalloc.start()
    try:
        call(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def check_format(*args: str) -> None:
    result = CliRunner().invoke(app, ["check-format", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("output", [False, True])
def test_grade_memory_does_not_grow_with_the_rows(tmp_path, output):
    small, large = write_rows(tmp_path / "1k.jsonl", 1_000), write_rows(tmp_path / "10k.jsonl",
                                                                          10_000)
    out = tmp_path / "out.jsonl" if output else None
    grade_file(small, out, grader="paper")  # imports and caches outside the measure
    peaks = [peak_bytes(grade_file, f, out, grader="paper") for f in (small, large)]
    assert peaks[1] < 1.5 * peaks[0] + (256 << 10), peaks  # 10x the rows, about the same peak
    if output:
        assert sum(1 for _ in out.open()) == 10_000
        assert [p.name for p in tmp_path.iterdir() if "parallel-r1-tmp" in p.name] == []


def test_check_format_memory_does_not_grow_with_the_rows(tmp_path):
    small, large = write_rows(tmp_path / "small.jsonl", 500), write_rows(tmp_path / "large.jsonl",
                                                                           5_000)
    args = ["--field", "response", "--normalize-from", "raw"]
    check_format(str(small), *args)
    peaks = [peak_bytes(check_format, str(f), *args) for f in (small, large)]
    assert peaks[1] < 1.5 * peaks[0] + (256 << 10), peaks


def test_a_line_over_the_limit_is_refused_with_its_file_and_line(tmp_path):
    row = {"response": "", "answer": "7", "raw": ""}
    fits = json.dumps({**row, "response": "x" * (1048 - len(json.dumps(row)))})  # 1,048 bytes
    huge = tmp_path / "huge.jsonl"
    with open(huge, "w") as handle:
        handle.write(fits + "\n" + json.dumps({**row, "response": "x" * (16 << 20)}) + "\n")
    for run in (lambda: grade_file(huge, grader="paper"),
                lambda: check_format(str(huge), "--field", "response")):
        with pytest.raises(DataError, match="longer than 8 MB") as err:
            assert peak_bytes(run) < 12 << 20  # the limit read, never the 16 MB line
        assert (err.value.file, err.value.line) == (str(huge), 2)
    result = CliRunner().invoke(app, ["grade", str(huge), "--max-trace-mb", "0.001"])
    assert isinstance(result.exception, DataError) and f"{huge}:2" in str(result.exception)
    assert "longer than 0.001 MB" in str(result.exception)
    path = tmp_path / "rows.jsonl"  # a line of exactly the limit is read
    path.write_text(json.dumps(row | {"response": "7"}) + "\n" + fits + "\n")
    assert grade_file(path, grader="paper", max_trace_mb=0.001).num_rows == 2
